// Pooling kernels: a thread per output plane sum (avg), per output window (max forward) and per
// input pixel gathering its gradients (max backward, no atomics).
#include "cuda/kernels/pool.h"

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 256;

#define SAFNET_GRID_STRIDE(i, total)                                                        \
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; \
       i < (total); i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

__global__ void avgpool_forward_kernel(std::int64_t planes, int hw, const float* x, float* y) {
  const float scale = 1.0f / static_cast<float>(hw);
  SAFNET_GRID_STRIDE(pl, planes) {
    const float* p = x + pl * hw;  // (HW)
    float acc = 0.0f;
    for (int i = 0; i < hw; ++i) acc += p[i];
    y[pl] = acc * scale;
  }
}

__global__ void avgpool_backward_kernel(std::int64_t total, int hw, const float* dy, float* dx) {
  const float scale = 1.0f / static_cast<float>(hw);
  SAFNET_GRID_STRIDE(i, total) dx[i] = dy[i / hw] * scale;
}

__global__ void maxpool_forward_kernel(PoolGeom g, const float* x, float* y, std::int32_t* argmax) {
  const int oh = g.oh(), ow = g.ow();
  const std::int64_t total = static_cast<std::int64_t>(g.n) * g.c * oh * ow;
  SAFNET_GRID_STRIDE(o, total) {
    const int j = static_cast<int>(o % ow), i = static_cast<int>((o / ow) % oh);
    const float* in = x + (o / (static_cast<std::int64_t>(oh) * ow)) * g.h * g.w;  // (H, W)
    const int h0 = max(0, i * g.stride - g.pad), h1 = min(g.h, i * g.stride - g.pad + g.k);
    const int w0 = max(0, j * g.stride - g.pad), w1 = min(g.w, j * g.stride - g.pad + g.k);
    int best_at = h0 * g.w + w0;
    float best = in[best_at];
    for (int a = h0; a < h1; ++a)
      for (int b = w0; b < w1; ++b) {
        const float v = in[a * g.w + b];
        if (v > best || (v != v && best == best)) {
          best = v;
          best_at = a * g.w + b;
        }
      }
    y[o] = best;
    argmax[o] = best_at;
  }
}

// Output rows whose window [o * stride - pad, o * stride - pad + k) contains input row `a`.
__device__ void covering(int a, int stride, int pad, int k, int out, int* lo, int* hi) {
  const int t = a + pad - k + 1;  // smallest o * stride that still reaches a
  *lo = t <= 0 ? 0 : (t + stride - 1) / stride;
  *hi = min(out - 1, (a + pad) / stride);
}

__global__ void maxpool_backward_kernel(PoolGeom g, const float* dy, const std::int32_t* argmax, float* dx) {
  const int oh = g.oh(), ow = g.ow(), hw = g.h * g.w;
  const std::int64_t total = static_cast<std::int64_t>(g.n) * g.c * hw;
  SAFNET_GRID_STRIDE(p, total) {
    const std::int64_t plane = p / hw;
    const int at = static_cast<int>(p % hw), a = at / g.w, b = at % g.w;
    const float* d = dy + plane * oh * ow;                // (OH, OW)
    const std::int32_t* idx = argmax + plane * oh * ow;  // (OH, OW)
    int i0, i1, j0, j1;
    covering(a, g.stride, g.pad, g.k, oh, &i0, &i1);
    covering(b, g.stride, g.pad, g.k, ow, &j0, &j1);
    float acc = 0.0f;
    for (int i = i0; i <= i1; ++i)
      for (int j = j0; j <= j1; ++j)
        if (idx[i * ow + j] == at) acc += d[i * ow + j];
    dx[p] = acc;
  }
}

#undef SAFNET_GRID_STRIDE

void check_avg(int n, int c, int hw, const char* op) {
  if (n < 1 || c < 1 || hw < 1)
    arg_fail("cuda/kernels/pool.cu: ", op, ": bad geometry n=", n, " c=", c, " hw=", hw);
}

void check_max(const PoolGeom& g, const char* op) {
  if (g.n < 1 || g.c < 1 || g.h < 1 || g.w < 1 || g.k < 1 || g.stride < 1 || g.pad < 0 || 2 * g.pad > g.k ||
      g.h + 2 * g.pad < g.k || g.w + 2 * g.pad < g.k)
    arg_fail("cuda/kernels/pool.cu: ", op, ": bad geometry n=", g.n, " c=", g.c, " h=", g.h, " w=", g.w,
             " k=", g.k, " stride=", g.stride, " pad=", g.pad);
}

}  // namespace

void global_avgpool_forward(int n, int c, int hw, const float* x, float* y, cudaStream_t s) {
  check_avg(n, c, hw, "global_avgpool_forward");
  const std::int64_t planes = static_cast<std::int64_t>(n) * c;
  SAFNET_LAUNCH(avgpool_forward_kernel, grid_for(planes, kThreads), kThreads, 0, s, planes, hw, x, y);
}

void global_avgpool_backward(int n, int c, int hw, const float* dy, float* dx, cudaStream_t s) {
  check_avg(n, c, hw, "global_avgpool_backward");
  const std::int64_t total = static_cast<std::int64_t>(n) * c * hw;
  SAFNET_LAUNCH(avgpool_backward_kernel, grid_for(total, kThreads), kThreads, 0, s, total, hw, dy, dx);
}

void maxpool_forward(const PoolGeom& g, const float* x, float* y, std::int32_t* argmax, cudaStream_t s) {
  check_max(g, "maxpool_forward");
  const std::int64_t total = static_cast<std::int64_t>(g.n) * g.c * g.oh() * g.ow();
  SAFNET_LAUNCH(maxpool_forward_kernel, grid_for(total, kThreads), kThreads, 0, s, g, x, y, argmax);
}

void maxpool_backward(const PoolGeom& g, const float* dy, const std::int32_t* argmax, float* dx, cudaStream_t s) {
  check_max(g, "maxpool_backward");
  const std::int64_t total = static_cast<std::int64_t>(g.n) * g.c * g.h * g.w;
  SAFNET_LAUNCH(maxpool_backward_kernel, grid_for(total, kThreads), kThreads, 0, s, g, dy, argmax, dx);
}

}  // namespace safnet::cuda
