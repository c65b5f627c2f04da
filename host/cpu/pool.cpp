// Pooling: global average pooling and max pooling with saved arg-max indices.
#include <algorithm>
#include <cstdint>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {

void global_avgpool_forward(int n, int c, int hw, const float* x, float* y) {
  if (n < 1 || c < 1 || hw < 1)
    fail("host/cpu/pool.cpp: global_avgpool_forward: bad geometry n=", n, " c=", c, " hw=", hw);
  const long planes = static_cast<long>(n) * c;
  const float scale = 1.0f / static_cast<float>(hw);
#pragma omp parallel for schedule(static) if (planes * hw > kParallelMin)
  for (long pl = 0; pl < planes; ++pl) {
    const float* p = x + pl * hw;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < hw; ++i) acc += p[i];
    y[pl] = acc * scale;
  }
}

void global_avgpool_backward(int n, int c, int hw, const float* dy, float* dx) {
  if (n < 1 || c < 1 || hw < 1)
    fail("host/cpu/pool.cpp: global_avgpool_backward: bad geometry n=", n, " c=", c, " hw=", hw);
  const long planes = static_cast<long>(n) * c;
  const float scale = 1.0f / static_cast<float>(hw);
#pragma omp parallel for schedule(static) if (planes * hw > kParallelMin)
  for (long pl = 0; pl < planes; ++pl) std::fill(dx + pl * hw, dx + (pl + 1) * hw, dy[pl] * scale);
}

namespace {

void check_geom(const PoolGeom& g, const char* op) {
  // pad <= k / 2 keeps every window on at least one input pixel, so padding never wins the max.
  if (g.n < 1 || g.c < 1 || g.h < 1 || g.w < 1 || g.k < 1 || g.stride < 1 || g.pad < 0 || 2 * g.pad > g.k ||
      g.h + 2 * g.pad < g.k || g.w + 2 * g.pad < g.k)
    fail("host/cpu/pool.cpp: ", op, ": bad geometry n=", g.n, " c=", g.c, " h=", g.h, " w=", g.w, " k=", g.k,
         " stride=", g.stride, " pad=", g.pad);
}

}  // namespace

void maxpool_forward(const PoolGeom& g, const float* x, float* y, std::int32_t* argmax) {
  check_geom(g, "maxpool_forward");
  const int oh = g.oh(), ow = g.ow();
  const long planes = static_cast<long>(g.n) * g.c;
#pragma omp parallel for schedule(static) if (planes * oh * ow * g.k * g.k > kParallelMin)
  for (long pl = 0; pl < planes; ++pl) {
    const float* in = x + pl * g.h * g.w;  // (H, W)
    float* out = y + pl * oh * ow;         // (OH, OW)
    std::int32_t* idx = argmax + pl * oh * ow;
    for (int i = 0; i < oh; ++i) {
      const int h0 = std::max(0, i * g.stride - g.pad), h1 = std::min(g.h, i * g.stride - g.pad + g.k);
      for (int j = 0; j < ow; ++j) {
        const int w0 = std::max(0, j * g.stride - g.pad), w1 = std::min(g.w, j * g.stride - g.pad + g.k);
        int best_at = h0 * g.w + w0;
        float best = in[best_at];
        for (int a = h0; a < h1; ++a)
          for (int b = w0; b < w1; ++b) {
            const float v = in[a * g.w + b];
            // The first NaN wins and stays, as in PyTorch: a corrupted value is not hidden.
            if (v > best || (v != v && best == best)) {
              best = v;
              best_at = a * g.w + b;
            }
          }
        out[i * ow + j] = best;
        idx[i * ow + j] = best_at;
      }
    }
  }
}

void maxpool_backward(const PoolGeom& g, const float* dy, const std::int32_t* argmax, float* dx) {
  check_geom(g, "maxpool_backward");
  const int ohw = g.oh() * g.ow(), hw = g.h * g.w;
  const long planes = static_cast<long>(g.n) * g.c;
  bool bad_index = false;
#pragma omp parallel for schedule(static) reduction(|| : bad_index) if (planes * hw > kParallelMin)
  for (long pl = 0; pl < planes; ++pl) {
    float* out = dx + pl * hw;
    const float* d = dy + pl * ohw;
    const std::int32_t* idx = argmax + pl * ohw;
    std::fill(out, out + hw, 0.0f);
    for (int i = 0; i < ohw; ++i) {
      if (idx[i] < 0 || idx[i] >= hw) {
        bad_index = true;
        continue;
      }
      out[idx[i]] += d[i];
    }
  }
  if (bad_index) fail("host/cpu/pool.cpp: maxpool_backward: arg-max index outside the input plane");
}

}  // namespace safnet::cpu
