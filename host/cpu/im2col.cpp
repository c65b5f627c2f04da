// im2col / col2im for one image: row-wise copies, with the valid output columns of each kernel
// tap computed once so the inner loops carry no bounds checks.
#include "host/cpu/im2col.h"

#include <algorithm>
#include <cstring>

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

}  // namespace

void im2col(const ConvGeom& g, const float* x, int y0, int y1, float* col) {
  const int ow = g.ow(), rows = y1 - y0;
  for (int c = 0; c < g.c; ++c) {
    const float* xc = x + static_cast<long>(c) * g.h * g.w;  // (H, W)
    for (int r = 0; r < g.r; ++r) {
      for (int s = 0; s < g.s; ++s) {
        const ColRange cr = valid_cols(g, s);
        float* row = col + (static_cast<long>(c * g.r + r) * g.s + s) * rows * ow;  // (rows, OW)
        for (int y = y0; y < y1; ++y) {
          float* out = row + static_cast<long>(y - y0) * ow;
          const int ih = y * g.stride - g.pad + r;
          if (ih < 0 || ih >= g.h) {
            std::memset(out, 0, sizeof(float) * static_cast<std::size_t>(ow));
            continue;
          }
          const float* in = xc + static_cast<long>(ih) * g.w;  // (W)
          const int off = s - g.pad;
          std::fill(out, out + cr.lo, 0.0f);
          if (g.stride == 1 && cr.hi > cr.lo) {
            std::memcpy(out + cr.lo, in + cr.lo + off, sizeof(float) * static_cast<std::size_t>(cr.hi - cr.lo));
          } else {
            for (int x0 = cr.lo; x0 < cr.hi; ++x0) out[x0] = in[static_cast<long>(x0) * g.stride + off];
          }
          std::fill(out + cr.hi, out + ow, 0.0f);
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

}  // namespace safnet::cpu
