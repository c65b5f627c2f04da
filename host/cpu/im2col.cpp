// im2col / col2im for one image, and the AVX2 panel unfolding of the blocked forward kernel. The
// copies read from zero-padded copies of the input rows, so their inner loops carry no bounds
// checks; col2im computes each tap's valid output columns once instead.
#include "host/cpu/im2col.h"

#include <algorithm>
#include <cstring>

#include <immintrin.h>

namespace safnet::cpu {

namespace {

// Output columns [lo, hi) whose input column ow * stride - pad + s lies inside [0, w).
struct ColRange {
  int lo, hi;
};

ColRange valid_cols(const ConvGeom& g, int s) {
  const int ow = g.ow();
  const int off = s - g.pad;
  // ow * stride + off >= 0  <=>  ow >= ceil(-off / stride)
  int lo = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride;
  // ow * stride + off <= w - 1  <=>  ow <= floor((w - 1 - off) / stride)
  const int last = g.w - 1 - off;
  int hi = last < 0 ? 0 : last / g.stride + 1;
  lo = std::min(lo, ow);
  hi = std::clamp(hi, lo, ow);
  return {lo, hi};
}

// Row copies with the width and stride known at compile time for ResNet's widths, so each row is
// a few vector moves with no loop bookkeeping; other widths take the generic loop.
template <int Stride>
void copy_rows(float* dst, const float* src, int rows, int ow, long src_ld) {
  for (int y = 0; y < rows; ++y, dst += ow, src += src_ld)
    for (int i = 0; i < ow; ++i) dst[i] = src[static_cast<long>(i) * Stride];
}

template <int Stride, int OW>
void copy_rows_fixed(float* dst, const float* src, int rows, long src_ld) {
  for (int y = 0; y < rows; ++y, dst += OW, src += src_ld)
    for (int i = 0; i < OW; ++i) dst[i] = src[i * Stride];
}

template <int Stride>
void copy_block(float* dst, const float* src, int rows, int ow, long src_ld) {
  switch (ow) {
    case 8: return copy_rows_fixed<Stride, 8>(dst, src, rows, src_ld);
    case 16: return copy_rows_fixed<Stride, 16>(dst, src, rows, src_ld);
    case 32: return copy_rows_fixed<Stride, 32>(dst, src, rows, src_ld);
    default: return copy_rows<Stride>(dst, src, rows, ow, src_ld);
  }
}

// The rows [ih0, ih1) of one channel (H, W), zero-padded to (ih1 - ih0, W + 2 * pad) in `plane`;
// input rows outside [0, H) read as zero rows.
void pad_rows(const ConvGeom& g, const float* xc, int ih0, int ih1, float* plane) {
  const int wp = g.w + 2 * g.pad;
  for (int ih = ih0; ih < ih1; ++ih, plane += wp) {
    if (ih < 0 || ih >= g.h) {
      for (int i = 0; i < wp; ++i) plane[i] = 0.0f;
      continue;
    }
    const float* in = xc + static_cast<long>(ih) * g.w;  // (W)
    float* right = plane + g.pad + g.w;
    if (g.pad <= 3) {
      // One store per border float: as loops, the compiler made each a memset call, which on rows
      // of 8 to 32 floats cost more than the copy (4 % of a ResNet-20 fault trial).
      if (g.pad > 0) plane[0] = right[0] = 0.0f;
      if (g.pad > 1) plane[1] = right[1] = 0.0f;
      if (g.pad > 2) plane[2] = right[2] = 0.0f;
    } else {
      std::fill(plane, plane + g.pad, 0.0f);
      std::fill(right, right + g.pad, 0.0f);
    }
    for (int i = 0; i < g.w; ++i) plane[g.pad + i] = in[i];
  }
}

// Floats of the padded rows im2col keeps on the stack (64 KiB); bands reading more take the
// per-row path with bounds computed per tap.
constexpr long kPlaneFloats = 16 * 1024;

void im2col_direct(const ConvGeom& g, const float* x, int y0, int y1, float* col, long ld) {
  const int ow = g.ow();
  for (int c = 0; c < g.c; ++c) {
    const float* xc = x + static_cast<long>(c) * g.h * g.w;  // (H, W)
    for (int r = 0; r < g.r; ++r) {
      for (int s = 0; s < g.s; ++s) {
        const ColRange cr = valid_cols(g, s);
        const int off = s - g.pad;
        float* row = col + (static_cast<long>(c * g.r + r) * g.s + s) * ld;  // (rows, OW)
        for (int y = y0; y < y1; ++y) {
          float* out = row + static_cast<long>(y - y0) * ow;
          const int ih = y * g.stride - g.pad + r;
          if (ih < 0 || ih >= g.h) {
            std::memset(out, 0, sizeof(float) * static_cast<std::size_t>(ow));
            continue;
          }
          const float* in = xc + static_cast<long>(ih) * g.w;  // (W)
          std::fill(out, out + cr.lo, 0.0f);
          for (int i = cr.lo; i < cr.hi; ++i) out[i] = in[static_cast<long>(i) * g.stride + off];
          std::fill(out + cr.hi, out + ow, 0.0f);
        }
      }
    }
  }
}

}  // namespace

// Each channel's rows are first copied into a zero-padded plane, so every tap becomes a block
// copy with no bounds checks: per-row memcpy and fill calls cost more than the copies themselves
// on rows of 8 to 32 floats, and doubled the time of the whole convolution.
void im2col(const ConvGeom& g, const float* x, int y0, int y1, float* col, long ld) {
  const int ow = g.ow(), rows = y1 - y0;
  const int wp = g.w + 2 * g.pad;
  const int ih0 = y0 * g.stride - g.pad, ih1 = (y1 - 1) * g.stride - g.pad + g.r;  // input rows read
  const long plane_floats = static_cast<long>(ih1 - ih0) * wp;
  if (plane_floats > kPlaneFloats) return im2col_direct(g, x, y0, y1, col, ld);
  float plane[kPlaneFloats];  // (ih1 - ih0, W + 2 * pad)
  for (int c = 0; c < g.c; ++c) {
    pad_rows(g, x + static_cast<long>(c) * g.h * g.w, ih0, ih1, plane);
    for (int r = 0; r < g.r; ++r) {
      for (int s = 0; s < g.s; ++s) {
        float* dst = col + (static_cast<long>(c * g.r + r) * g.s + s) * ld;  // (rows, OW)
        const float* src = plane + static_cast<long>(r) * wp + s;
        const long src_ld = static_cast<long>(g.stride) * wp;
        if (g.stride == 1) {
          copy_block<1>(dst, src, rows, ow, src_ld);
        } else if (g.stride == 2) {
          copy_block<2>(dst, src, rows, ow, src_ld);
        } else {
          for (int y = 0; y < rows; ++y)
            for (int i = 0; i < ow; ++i) dst[y * ow + i] = src[y * src_ld + static_cast<long>(i) * g.stride];
        }
      }
    }
  }
}

void col2im(const ConvGeom& g, const float* col, float* x) {
  const int oh = g.oh(), ow = g.ow();
  std::memset(x, 0, sizeof(float) * static_cast<std::size_t>(g.c) * g.h * g.w);
  for (int c = 0; c < g.c; ++c) {
    float* xc = x + static_cast<long>(c) * g.h * g.w;  // (H, W)
    for (int r = 0; r < g.r; ++r) {
      for (int s = 0; s < g.s; ++s) {
        const ColRange cr = valid_cols(g, s);
        const float* row = col + (static_cast<long>(c * g.r + r) * g.s + s) * oh * ow;  // (OH, OW)
        for (int y = 0; y < oh; ++y) {
          const int ih = y * g.stride - g.pad + r;
          if (ih < 0 || ih >= g.h) continue;
          const float* in = row + static_cast<long>(y) * ow;
          float* out = xc + static_cast<long>(ih) * g.w;  // (W)
          const int off = s - g.pad;
          if (g.stride == 1 && cr.hi > cr.lo) {
            float* dst = out + cr.lo + off;
            const float* src = in + cr.lo;
#pragma omp simd
            for (int i = 0; i < cr.hi - cr.lo; ++i) dst[i] += src[i];
          } else {
            for (int x0 = cr.lo; x0 < cr.hi; ++x0) out[static_cast<long>(x0) * g.stride + off] += in[x0];
          }
        }
      }
    }
  }
}

long padded_image_floats(const ConvGeom& g) {
  return static_cast<long>(g.c) * (g.h + 2 * g.pad) * (g.w + 2 * g.pad) + kPanelPixels;
}

void pad_image(const ConvGeom& g, const float* x, float* xp) {
  const int hp = g.h + 2 * g.pad;
  for (int c = 0; c < g.c; ++c)
    pad_rows(g, x + static_cast<long>(c) * g.h * g.w, -g.pad, hp - g.pad,
             xp + static_cast<long>(c) * hp * (g.w + 2 * g.pad));
  std::fill(xp + padded_image_floats(g) - kPanelPixels, xp + padded_image_floats(g), 0.0f);
}

namespace {

// How one half panel (8 pixels) reads each tap: 8 consecutive floats, every second of 16
// consecutive floats, or a gather when the half crosses an output row or the stride is larger.
enum class HalfKind { contiguous, stride2, gather };

struct Half {
  HalfKind kind;
  int base;        // offset in a channel's padded plane of the half's first pixel's (0, 0) tap
  int offsets[8];  // of every pixel, for gathers
};

// Called for every panel of every image: the pixel's row and column are stepped, not divided for.
Half describe_half(const ConvGeom& g, int p0) {
  const int ow = g.ow(), last = g.oh() * ow - 1, wp = g.w + 2 * g.pad;
  Half h;
  bool one_row = true;
  int y = std::min(p0, last) / ow, x = std::min(p0, last) % ow;
  for (int j = 0; j < 8; ++j) {
    h.offsets[j] = y * g.stride * wp + x * g.stride;
    one_row = one_row && p0 + j <= last && y == p0 / ow;
    if (p0 + j < last && ++x == ow) {  // past the last pixel every offset repeats the last one's
      x = 0;
      ++y;
    }
  }
  h.base = h.offsets[0];
  h.kind = !one_row           ? HalfKind::gather
           : g.stride == 1     ? HalfKind::contiguous
           : g.stride == 2     ? HalfKind::stride2
                               : HalfKind::gather;
  return h;
}

template <HalfKind Kind>
__attribute__((target("avx2"))) inline __m256 read_half(const float* src, int base, __m256i idx) {
  if constexpr (Kind == HalfKind::contiguous) {
    return _mm256_loadu_ps(src + base);
  } else if constexpr (Kind == HalfKind::stride2) {
    // Even floats of 16: shuffle within lanes, then put the four 64-bit pairs in order.
    const __m256 a = _mm256_loadu_ps(src + base), b = _mm256_loadu_ps(src + base + 8);
    const __m256 even = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), _MM_SHUFFLE(3, 1, 2, 0)));
  } else {
    return _mm256_i32gather_ps(src, idx, 4);
  }
}

// The kinds are template arguments so the loop over taps carries no branch.
template <HalfKind Lo, HalfKind Hi>
__attribute__((target("avx2"))) void panel_taps(const ConvGeom& g, const float* xp, const Half& lo, const Half& hi,
                                                float* panel) {
  const int wp = g.w + 2 * g.pad;
  const long plane = static_cast<long>(g.h + 2 * g.pad) * wp;
  const __m256i lo_idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo.offsets));
  const __m256i hi_idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi.offsets));
  for (int c = 0; c < g.c; ++c) {
    for (int r = 0; r < g.r; ++r) {
      const float* src = xp + c * plane + static_cast<long>(r) * wp;
      for (int s = 0; s < g.s; ++s, panel += kPanelPixels) {
        _mm256_storeu_ps(panel, read_half<Lo>(src + s, lo.base, lo_idx));
        _mm256_storeu_ps(panel + 8, read_half<Hi>(src + s, hi.base, hi_idx));
      }
    }
  }
}

template <HalfKind Lo>
void panel_taps_lo(const ConvGeom& g, const float* xp, const Half& lo, const Half& hi, float* panel) {
  switch (hi.kind) {
    case HalfKind::contiguous: return panel_taps<Lo, HalfKind::contiguous>(g, xp, lo, hi, panel);
    case HalfKind::stride2: return panel_taps<Lo, HalfKind::stride2>(g, xp, lo, hi, panel);
    default: return panel_taps<Lo, HalfKind::gather>(g, xp, lo, hi, panel);
  }
}

}  // namespace

bool panel_is_direct(const ConvGeom& g, int p0, int* base) {
  const int ow = g.ow();
  if (g.stride != 1 || p0 % ow + kPanelPixels > ow) return false;
  *base = (p0 / ow) * (g.w + 2 * g.pad) + p0 % ow;
  return true;
}

bool halves_are_direct(const ConvGeom& g, int p0, int* lo_base, int* hi_base) {
  const int ow = g.ow(), wp = g.w + 2 * g.pad;
  if (g.stride != 1 || p0 + kPanelPixels > g.oh() * ow) return false;
  int* bases[2] = {lo_base, hi_base};
  for (int h = 0; h < 2; ++h) {
    const int q = p0 + 8 * h;
    if (q % ow + 8 > ow) return false;
    *bases[h] = (q / ow) * wp + q % ow;
  }
  return true;
}

std::vector<int> tap_offsets(const ConvGeom& g) {
  if (padded_image_floats(g) >= (1L << 31)) return {};
  const int wp = g.w + 2 * g.pad;
  const int plane = (g.h + 2 * g.pad) * wp;
  std::vector<int> taps;
  taps.reserve(static_cast<std::size_t>(g.c) * g.r * g.s);
  for (int c = 0; c < g.c; ++c)
    for (int r = 0; r < g.r; ++r)
      for (int s = 0; s < g.s; ++s) taps.push_back(c * plane + r * wp + s);
  return taps;
}

void im2col_panel(const ConvGeom& g, const float* xp, int p0, float* panel) {
  const Half lo = describe_half(g, p0), hi = describe_half(g, p0 + 8);
  switch (lo.kind) {
    case HalfKind::contiguous: return panel_taps_lo<HalfKind::contiguous>(g, xp, lo, hi, panel);
    case HalfKind::stride2: return panel_taps_lo<HalfKind::stride2>(g, xp, lo, hi, panel);
    default: return panel_taps_lo<HalfKind::gather>(g, xp, lo, hi, panel);
  }
}

}  // namespace safnet::cpu
