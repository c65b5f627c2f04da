// Conv2d forward and backward: OpenMP across images; per image, a blocked AVX2/AVX-512 kernel
// (forward, the data gradient run as a forward, and on AVX-512 the weight gradient) or im2col +
// sgemm.
// The unfolded matrix is 9x the input for 3x3 kernels, and with few output channels (16 to 64 in
// a CIFAR ResNet) moving it costs as much as the arithmetic. The blocked kernel never builds it
// whole: it unfolds 16 output pixels at a time into an L1-resident panel and computes every output
// channel from it. The sgemm paths (CPUs without AVX2, weight gradients, wide layers) build each
// image's im2col a band of output rows at a time, sized to stay in the core's L2 cache while the
// GEMM packs it, or, when an image's output is small, put several images side by side in one GEMM.

#include <algorithm>
#include <cstring>
#include <vector>

#include "host/check.h"
#include "host/cpu/conv_epilogue.h"
#include "host/cpu/cpu_features.h"
#include "host/cpu/conv_tiles.h"
#include "host/cpu/gemm.h"
#include "host/cpu/im2col.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {

namespace {

// Floats of im2col per band: 128 KiB, a quarter of a 512 KiB L2, leaving room for OpenBLAS's
// packed panels.
constexpr long kBandFloats = 32 * 1024;

// Columns below which forward GEMMs take several whole images at once.
constexpr int kMinGemmCols = 512;

void check_geom(const ConvGeom& g, const char* op) {
  if (g.n < 1 || g.c < 1 || g.h < 1 || g.w < 1 || g.k < 1 || g.r < 1 || g.s < 1 || g.stride < 1 || g.pad < 0)
    fail("host/cpu/conv2d.cpp: ", op, ": bad geometry n=", g.n, " c=", g.c, " h=", g.h, " w=", g.w, " k=", g.k,
         " r=", g.r, " s=", g.s, " stride=", g.stride, " pad=", g.pad);
  if (g.h + 2 * g.pad < g.r || g.w + 2 * g.pad < g.s)
    fail("host/cpu/conv2d.cpp: ", op, ": kernel ", g.r, "x", g.s, " larger than the padded input ", g.h + 2 * g.pad,
         "x", g.w + 2 * g.pad);
}

// A 1x1, stride-1, unpadded convolution's im2col is the input itself.
bool is_pointwise(const ConvGeom& g) { return g.r == 1 && g.s == 1 && g.stride == 1 && g.pad == 0; }

struct Dims {
  int crs, ow, ohw;
  int band;                 // output rows per im2col band
  long x_stride, y_stride;  // floats per image of x and of y
};

Dims dims(const ConvGeom& g) {
  Dims d;
  d.crs = g.c * g.r * g.s;
  d.ow = g.ow();
  d.ohw = g.oh() * d.ow;
  d.band = is_pointwise(g) ? g.oh() : static_cast<int>(std::clamp<long>(kBandFloats / (static_cast<long>(d.crs) * d.ow), 1, g.oh()));
  d.x_stride = static_cast<long>(g.c) * g.h * g.w;
  d.y_stride = static_cast<long>(g.k) * d.ohw;
  return d;
}

// The im2col (C*R*S, cols) of image `n`'s output rows [y0, y1), in this thread's scratch unless
// the input can be used as it is. Sets ld to the matrix's leading dimension.
const float* band_cols(const ConvGeom& g, const Dims& d, const float* xn, int y0, int y1, int* ld) {
  if (is_pointwise(g)) {
    *ld = d.ohw;
    return xn + static_cast<long>(y0) * d.ow;
  }
  *ld = (y1 - y0) * d.ow;
  float* col = thread_scratch(static_cast<std::size_t>(d.crs) * *ld);  // (C*R*S, cols)
  im2col(g, xn, y0, y1, col, *ld);
  return col;
}

// Images per GEMM when one image's output is small: an sgemm with few columns spends more time
// packing and in its edge kernels than multiplying (64x64 outputs per image in ResNet stage 3
// run at two thirds of the speed of 512 columns). A function of the geometry only, so the
// grouping, and every bit of the result, is the same for any thread count.
int images_per_gemm(const ConvGeom& g, const Dims& d) {
  if (is_pointwise(g) || d.ohw >= kMinGemmCols) return 1;
  return std::min(g.n, (kMinGemmCols + d.ohw - 1) / d.ohw);
}

// Image n's outputs at pixels [p0, p0 + cols) of every channel, in yn (K, OH*OW), through the
// epilogue (nothing when it is null).
void apply_epilogue(const ConvEpilogue* e, const ConvGeom& g, const Dims& d, int n, long p0, long cols, float* yn) {
  if (e) apply_conv_epilogue(*e, g.k, d.ohw, e->residual ? e->residual + n * d.y_stride : nullptr, p0, cols, yn);
}

// y (N, K, OH, OW) for images [n0, n0 + count), whole images side by side in one GEMM.
void forward_group(const ConvGeom& g, const Dims& d, const float* x, const float* w, float* y, int n0, int count,
                   const ConvEpilogue* e) {
  const long cols = static_cast<long>(count) * d.ohw;
  float* col = thread_scratch(static_cast<std::size_t>(d.crs) * cols);   // (C*R*S, count * OH*OW)
  float* out = thread_scratch(static_cast<std::size_t>(g.k) * cols, 1);  // (K, count * OH*OW)
  for (int i = 0; i < count; ++i) im2col(g, x + (n0 + i) * d.x_stride, 0, g.oh(), col + i * d.ohw, cols);
  sgemm(false, false, g.k, static_cast<int>(cols), d.crs, 1.0f, w, d.crs, col,
              static_cast<int>(cols), 0.0f, out, static_cast<int>(cols));
  for (int i = 0; i < count; ++i) {
    for (int k = 0; k < g.k; ++k)
      std::memcpy(y + (n0 + i) * d.y_stride + static_cast<long>(k) * d.ohw, out + k * cols + i * d.ohw,
                  sizeof(float) * static_cast<std::size_t>(d.ohw));
    apply_epilogue(e, g, d, n0 + i, 0, d.ohw, y + (n0 + i) * d.y_stride);
  }
}

// Terms per output above which the blocked kernel is not used: its panel (C*R*S, 16) then
// outgrows 64 KiB and each weight tile's pass would stream it from L2 or beyond, where OpenBLAS's
// blocking over C*R*S does better. ResNet-20's largest is 576 (64 channels, 3x3).
constexpr int kMaxPanelTerms = 1024;

// Whether the blocked kernel runs this geometry: an AVX2 CPU, an unfolding (pointwise layers read
// the input as it is), few enough terms, and padded planes small enough for 32-bit offsets.
bool use_panels(const ConvGeom& g) {
  const long plane = static_cast<long>(g.h + 2 * g.pad) * (g.w + 2 * g.pad);
  return avx2_kernels_enabled() && !is_pointwise(g) && static_cast<long>(g.c) * g.r * g.s <= kMaxPanelTerms &&
         plane < (1L << 30);
}

// y (N, K, OH, OW) = conv(x, w) by panels of output pixels, every channel of a panel at once; each
// image through the epilogue while it is in L2 (per panel, the residual's K rows would be K
// streams of one cache line each, which the prefetchers do not follow: slower than an unfused add).
void forward_panels(const ConvGeom& g, const float* x, const float* w, float* y, const ConvEpilogue* e) {
  const Dims d = dims(g);
  const std::vector<float> wp = pack_weights(g.k, d.crs, w);  // (tiles, C*R*S, kTileRows)
  const int tiles = tile_count(g.k);
  const bool groups = groups_cover(g.k);
  const std::vector<int> taps = tap_offsets(g);  // (C*R*S); empty where offsets overflow int
#pragma omp parallel for schedule(static)
  for (int n = 0; n < g.n; ++n) {
    float* xp = thread_scratch(static_cast<std::size_t>(padded_image_floats(g)));               // (C, HP, WP) + slack
    float* panel = thread_scratch(static_cast<std::size_t>(d.crs) * kPanelPixels, 1);  // (C*R*S, kPanelPixels)
    pad_image(g, x + n * d.x_stride, xp);
    float* yn = y + n * d.y_stride;  // (K, OH*OW)
    for (int p0 = 0; p0 < d.ohw; p0 += kPanelPixels) {
      const int cols = std::min(kPanelPixels, d.ohw - p0);
      if (groups) {
        panel_by_groups(g, wp.data(), xp, taps.empty() ? nullptr : taps.data(), p0, cols, panel, yn, d.ohw);
      } else if (int lo, hi; !taps.empty() && halves_are_direct(g, p0, &lo, &hi)) {
        for (int t = 0; t < tiles; ++t) {
          const int m0 = tile_start(g.k, t), m1 = tile_start(g.k, t + 1);
          run_tile_direct(m1 - m0, d.crs, wp.data() + static_cast<std::size_t>(t) * d.crs * kTileRows, xp + lo, xp + hi,
                          taps.data(), yn + static_cast<long>(m0) * d.ohw + p0, d.ohw, cols);
        }
      } else {
        im2col_panel(g, xp, p0, panel);
        for (int t = 0; t < tiles; ++t) {
          const int m0 = tile_start(g.k, t), m1 = tile_start(g.k, t + 1);
          run_tile(m1 - m0, d.crs, wp.data() + static_cast<std::size_t>(t) * d.crs * kTileRows, panel,
                   yn + static_cast<long>(m0) * d.ohw + p0, d.ohw, cols);
        }
      }
    }
    apply_epilogue(e, g, d, n, 0, d.ohw, yn);
  }
}

// y (N, K, OH, OW) = conv(x, w) for a checked geometry, then the epilogue (null: none).
void forward_gemm(const ConvGeom& g, const float* x, const float* w, float* y, const ConvEpilogue* e) {
  if (use_panels(g)) return forward_panels(g, x, w, y, e);
  const Dims d = dims(g);
  const int oh = g.oh();
  const int per = images_per_gemm(g, d);
  if (per > 1) {
    const int groups = (g.n + per - 1) / per;
#pragma omp parallel for schedule(static)
    for (int gi = 0; gi < groups; ++gi) forward_group(g, d, x, w, y, gi * per, std::min(per, g.n - gi * per), e);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int n = 0; n < g.n; ++n) {
    for (int y0 = 0; y0 < oh; y0 += d.band) {
      const int y1 = std::min(oh, y0 + d.band);
      int ld;
      const float* col = band_cols(g, d, x + n * d.x_stride, y0, y1, &ld);
      sgemm(false, false, g.k, (y1 - y0) * d.ow, d.crs, 1.0f, w, d.crs, col, ld,
                  0.0f, y + n * d.y_stride + static_cast<long>(y0) * d.ow, d.ohw);
      apply_epilogue(e, g, d, n, static_cast<long>(y0) * d.ow, static_cast<long>(y1 - y0) * d.ow, y + n * d.y_stride);
    }
  }
}

// The weight gradient by the AVX-512 kernel, as the GEMM dW (K, R*S*C) = dy (K, OH*OW) times the
// image unfolded by output pixel (OH*OW, R*S*C). With the image copied to (H, W, C) layout, 16
// channels of one tap are 16 consecutive floats for every output pixel, so the kernel reads them
// straight from the copy, with dy packed into tiles in the weights' place; no im2col, no packing
// by OpenBLAS (a third of its time at M = 16 output channels). Needs whole vectors of channels.
bool weight_grad_by_groups(const ConvGeom& g) {
  const long image = static_cast<long>(g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.c;
  return g.c % kPanelPixels == 0 && groups_cover(g.k) && image < (1L << 31);
}

// xh (H + 2 pad, W + 2 pad, C) = x (C, H, W) with zero borders.
void pad_image_hwc(const ConvGeom& g, const float* x, float* xh) {
  const int wp = g.w + 2 * g.pad;
  std::fill(xh, xh + static_cast<long>(g.h + 2 * g.pad) * wp * g.c, 0.0f);
  const long plane = static_cast<long>(g.h) * g.w;
  for (int y = 0; y < g.h; ++y)
    for (int xx = 0; xx < g.w; ++xx) {
      float* dst = xh + (static_cast<long>(y + g.pad) * wp + xx + g.pad) * g.c;
      const float* src = x + static_cast<long>(y) * g.w + xx;
      for (int c = 0; c < g.c; ++c) dst[c] = src[c * plane];
    }
}

// dw (K, C, R, S); each chunk of kReduceChunk images sums its images in order, one pixel after
// another, and the chunks' sums are added in chunk order: the same bits for any thread count.
void backward_weight_by_groups(const ConvGeom& g, const float* x, const float* dy, float* dw) {
  const Dims d = dims(g);
  const int rs = g.r * g.s, wp = g.w + 2 * g.pad;
  const long rsc = d.crs;
  const std::size_t xh_floats = static_cast<std::size_t>(g.h + 2 * g.pad) * wp * g.c;
  const std::size_t dyt_floats = static_cast<std::size_t>(tile_count(g.k)) * d.ohw * kTileRows;
  std::vector<int> pixels(d.ohw);  // (OH*OW) offset in xh of each output pixel's (0, 0) tap
  for (int p = 0; p < d.ohw; ++p) pixels[p] = ((p / d.ow) * g.stride * wp + (p % d.ow) * g.stride) * g.c;
  const std::size_t wsize = static_cast<std::size_t>(g.k) * rsc;
  const int chunks = (g.n + kReduceChunk - 1) / kReduceChunk;
  float* partial = thread_scratch(wsize * chunks, 1);  // (chunks, K, R*S*C)
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int ch = 0; ch < chunks; ++ch) {
      float* xh = thread_scratch(xh_floats, 0);    // (H + 2 pad, W + 2 pad, C)
      float* dyt = thread_scratch(dyt_floats, 2);  // (tiles, OH*OW, kTileRows)
      float* out = partial + ch * wsize;           // (K, R*S*C)
      const int first = ch * kReduceChunk, last = std::min(g.n, first + kReduceChunk);
      for (int n = first; n < last; ++n) {
        pad_image_hwc(g, x + n * d.x_stride, xh);
        pack_tiles(g.k, d.ohw, dy + n * d.y_stride, dyt);
        for (int tap = 0; tap < rs; ++tap) {
          for (int c0 = 0; c0 < g.c; c0 += kPanelPixels) {
            const PanelSource src{xh + (static_cast<long>(tap / g.s) * wp + tap % g.s) * g.c + c0, pixels.data()};
            for (int t = 0, m; t < tile_count(g.k); t += m) {
              m = group_size(g.k, t);
              const float* wt = dyt + static_cast<std::size_t>(t) * d.ohw * kTileRows;
              float* y = out + tile_start(g.k, t) * rsc + static_cast<long>(tap) * g.c + c0;
              run_group(/*direct=*/true, /*accumulate=*/n > first, g.k, t, m, d.ohw, wt, src, y, rsc, kPanelPixels);
            }
          }
        }
      }
    }
#pragma omp for schedule(static)
    for (int k = 0; k < g.k; ++k)
      for (int c = 0; c < g.c; ++c)
        for (int tap = 0; tap < rs; ++tap) {
          const std::size_t from = static_cast<std::size_t>(k) * rsc + static_cast<std::size_t>(tap) * g.c + c;
          float sum = partial[from];
          for (int ch = 1; ch < chunks; ++ch) sum += partial[ch * wsize + from];
          dw[(static_cast<long>(k) * g.c + c) * rs + tap] = sum;
        }
  }
}

// A stride-1 convolution's data gradient is itself a stride-1 convolution of dy with the kernel
// flipped and its channel axes swapped, padded by R - 1 - pad: one GEMM with C*R*S = K*R*S terms
// per output and no col2im scatter. Needs the same padding on both axes (R == S).
bool backward_data_as_forward(const ConvGeom& g) {
  return g.stride == 1 && g.r == g.s && g.pad <= g.r - 1 && !is_pointwise(g);
}

}  // namespace

void conv2d_forward(const ConvGeom& g, const float* x, const float* w, float* y, const ConvEpilogue* epilogue) {
  check_geom(g, "conv2d_forward");
  blas_use_calling_thread();
  forward_gemm(g, x, w, y, epilogue);
}

void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx) {
  check_geom(g, "conv2d_backward_data");
  blas_use_calling_thread();
  if (backward_data_as_forward(g)) {
    const ConvGeom t{g.n, g.k, g.oh(), g.ow(), g.c, g.r, g.s, 1, g.r - 1 - g.pad};
    const int rs = g.r * g.s;
    float* wt = thread_scratch(static_cast<std::size_t>(g.k) * g.c * rs, 2);  // (C, K, R, S)
    for (int k = 0; k < g.k; ++k)
      for (int c = 0; c < g.c; ++c)
        for (int i = 0; i < rs; ++i)
          wt[(static_cast<long>(c) * g.k + k) * rs + i] = w[(static_cast<long>(k) * g.c + c) * rs + (rs - 1 - i)];
    forward_gemm(t, dy, wt, dx, nullptr);
    return;
  }
  const Dims d = dims(g);
  const bool direct = is_pointwise(g);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < g.n; ++n) {
    float* dxn = dx + n * d.x_stride;  // (C, H, W)
    float* dcol = direct ? dxn : thread_scratch(static_cast<std::size_t>(d.crs) * d.ohw);  // (C*R*S, OH*OW)
    sgemm(true, false, d.crs, d.ohw, g.k, 1.0f, w, d.crs, dy + n * d.y_stride,
                d.ohw, 0.0f, dcol, d.ohw);
    if (!direct) col2im(g, dcol, dxn);
  }
}

void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw) {
  check_geom(g, "conv2d_backward_weight");
  blas_use_calling_thread();
  if (weight_grad_by_groups(g)) return backward_weight_by_groups(g, x, dy, dw);
  const Dims d = dims(g);
  const int oh = g.oh();
  const std::size_t wsize = static_cast<std::size_t>(g.k) * d.crs;
  const int chunks = (g.n + kReduceChunk - 1) / kReduceChunk;
  // One partial sum (K, C*R*S) per chunk of kReduceChunk images, added in chunk order below.
  float* partial = chunks == 1 ? dw : thread_scratch(wsize * chunks, 1);  // (chunks, K, C*R*S)
  constexpr long kBlock = 4096;
  const long blocks = (static_cast<long>(wsize) + kBlock - 1) / kBlock;
  // One parallel region for both loops: a second fork/join per call costs more than the sum.
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int ch = 0; ch < chunks; ++ch) {
      const int first = ch * kReduceChunk, last = std::min(g.n, first + kReduceChunk);
      for (int n = first; n < last; ++n) {
        for (int y0 = 0; y0 < oh; y0 += d.band) {
          const int y1 = std::min(oh, y0 + d.band);
          int ld;
          const float* col = band_cols(g, d, x + n * d.x_stride, y0, y1, &ld);
          const bool start = n == first && y0 == 0;
          sgemm(false, true, g.k, d.crs, (y1 - y0) * d.ow, 1.0f,
                      dy + n * d.y_stride + static_cast<long>(y0) * d.ow, d.ohw, col, ld, start ? 0.0f : 1.0f,
                      partial + ch * wsize, d.crs);
        }
      }
    }
    if (chunks > 1) {
#pragma omp for schedule(static)
      for (long b = 0; b < blocks; ++b) {
        const long lo = b * kBlock, len = std::min<long>(kBlock, static_cast<long>(wsize) - lo);
        float* out = dw + lo;
        std::memcpy(out, partial + lo, sizeof(float) * static_cast<std::size_t>(len));
        for (int ch = 1; ch < chunks; ++ch) {
          const float* p = partial + ch * wsize + lo;
#pragma omp simd
          for (long i = 0; i < len; ++i) out[i] += p[i];
        }
      }
    }
  }
}

}  // namespace safnet::cpu
