// He et al. option A shortcut: strided subsampling plus zero channels on both sides.
#include <algorithm>
#include <cstring>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {

namespace {

void check_geom(int n, int c, int h, int w, int stride, int k, const char* op) {
  if (n < 1 || c < 1 || h < 1 || w < 1 || stride < 1 || k < c || (k - c) % 2 != 0)
    fail("host/cpu/shortcut.cpp: ", op, ": bad geometry n=", n, " c=", c, " h=", h, " w=", w, " stride=", stride,
         " k=", k, " (needs k >= c and k - c even)");
}

}  // namespace

void shortcut_a_forward(int n, int c, int h, int w, int stride, int k, const float* x, float* y) {
  check_geom(n, c, h, w, stride, k, "shortcut_a_forward");
  const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, pad = (k - c) / 2;
  const long planes = static_cast<long>(n) * k;
#pragma omp parallel for schedule(static) if (planes * oh * ow > kParallelMin)
  for (long pl = 0; pl < planes; ++pl) {
    const int img = static_cast<int>(pl / k), ch = static_cast<int>(pl % k) - pad;
    float* out = y + pl * oh * ow;  // (OH, OW)
    if (ch < 0 || ch >= c) {
      std::fill(out, out + static_cast<long>(oh) * ow, 0.0f);
      continue;
    }
    const float* in = x + (static_cast<long>(img) * c + ch) * h * w;  // (H, W)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) out[i * ow + j] = in[static_cast<long>(i) * stride * w + j * stride];
  }
}

void shortcut_a_backward(int n, int c, int h, int w, int stride, int k, const float* dy, float* dx) {
  check_geom(n, c, h, w, stride, k, "shortcut_a_backward");
  const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, pad = (k - c) / 2;
  const long planes = static_cast<long>(n) * c;
#pragma omp parallel for schedule(static) if (planes * h * w > kParallelMin)
  for (long pl = 0; pl < planes; ++pl) {
    const int img = static_cast<int>(pl / c), ch = static_cast<int>(pl % c);
    float* out = dx + pl * h * w;                                           // (H, W)
    const float* in = dy + (static_cast<long>(img) * k + ch + pad) * oh * ow;  // (OH, OW)
    if (stride == 1) {
      std::memcpy(out, in, sizeof(float) * static_cast<std::size_t>(h) * w);
      continue;
    }
    std::fill(out, out + static_cast<long>(h) * w, 0.0f);
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) out[static_cast<long>(i) * stride * w + j * stride] = in[i * ow + j];
  }
}

}  // namespace safnet::cpu
