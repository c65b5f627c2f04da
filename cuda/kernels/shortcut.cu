// Option A shortcut kernels: one thread per output element, gathering its one source (or zero).
#include "cuda/kernels/shortcut.h"

#include <cstdint>

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 256;

__global__ void shortcut_forward_kernel(int n, int c, int h, int w, int stride, int k, const float* x, float* y) {
  const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, pad = (k - c) / 2;
  const std::int64_t total = static_cast<std::int64_t>(n) * k * oh * ow;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int j = static_cast<int>(i % ow);
    const int r = static_cast<int>((i / ow) % oh);
    const int ch = static_cast<int>((i / (static_cast<std::int64_t>(ow) * oh)) % k) - pad;
    const std::int64_t img = i / (static_cast<std::int64_t>(ow) * oh * k);
    y[i] = ch < 0 || ch >= c ? 0.0f : x[((img * c + ch) * h + static_cast<std::int64_t>(r) * stride) * w + j * stride];
  }
}

__global__ void shortcut_backward_kernel(int n, int c, int h, int w, int stride, int k, const float* dy, float* dx) {
  const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, pad = (k - c) / 2;
  const std::int64_t total = static_cast<std::int64_t>(n) * c * h * w;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int col = static_cast<int>(i % w);
    const int row = static_cast<int>((i / w) % h);
    const std::int64_t plane = i / (static_cast<std::int64_t>(w) * h);  // img * c + ch
    const std::int64_t img = plane / c;
    const int ch = static_cast<int>(plane % c);
    float v = 0.0f;
    if (row % stride == 0 && col % stride == 0)
      v = dy[((img * k + ch + pad) * oh + row / stride) * ow + col / stride];
    dx[i] = v;
  }
}

void check_geom(int n, int c, int h, int w, int stride, int k, const char* op) {
  if (n < 1 || c < 1 || h < 1 || w < 1 || stride < 1 || k < c || (k - c) % 2 != 0)
    arg_fail("cuda/kernels/shortcut.cu: ", op, ": bad geometry n=", n, " c=", c, " h=", h, " w=", w,
             " stride=", stride, " k=", k, " (needs k >= c and k - c even)");
}

}  // namespace

void shortcut_a_forward(int n, int c, int h, int w, int stride, int k, const float* x, float* y, cudaStream_t s) {
  check_geom(n, c, h, w, stride, k, "shortcut_a_forward");
  const std::int64_t total =
      static_cast<std::int64_t>(n) * k * ((h + stride - 1) / stride) * ((w + stride - 1) / stride);
  SAFNET_LAUNCH(shortcut_forward_kernel, grid_for(total, kThreads), kThreads, 0, s, n, c, h, w, stride, k, x, y);
}

void shortcut_a_backward(int n, int c, int h, int w, int stride, int k, const float* dy, float* dx, cudaStream_t s) {
  check_geom(n, c, h, w, stride, k, "shortcut_a_backward");
  const std::int64_t total = static_cast<std::int64_t>(n) * c * h * w;
  SAFNET_LAUNCH(shortcut_backward_kernel, grid_for(total, kThreads), kThreads, 0, s, n, c, h, w, stride, k, dy, dx);
}

}  // namespace safnet::cuda
