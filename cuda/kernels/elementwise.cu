// Element-wise kernels: one grid-stride loop per op.
#include "cuda/kernels/elementwise.h"

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 256;

__global__ void relu_forward_kernel(std::int64_t n, const float* x, float* y) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

__global__ void relu_backward_kernel(std::int64_t n, const float* y, const float* dy, float* dx) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void add_kernel(std::int64_t n, const float* a, const float* b, float* y) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    y[i] = a[i] + b[i];
}

void check_n(std::int64_t n, const char* op) {
  if (n < 0) arg_fail("cuda/kernels/elementwise.cu: ", op, ": negative count ", n);
}

}  // namespace

void relu_forward(std::int64_t n, const float* x, float* y, cudaStream_t s) {
  check_n(n, "relu_forward");
  if (n == 0) return;
  SAFNET_LAUNCH(relu_forward_kernel, grid_for(n, kThreads), kThreads, 0, s, n, x, y);
}

void relu_backward(std::int64_t n, const float* y, const float* dy, float* dx, cudaStream_t s) {
  check_n(n, "relu_backward");
  if (n == 0) return;
  SAFNET_LAUNCH(relu_backward_kernel, grid_for(n, kThreads), kThreads, 0, s, n, y, dy, dx);
}

void add_forward(std::int64_t n, const float* a, const float* b, float* y, cudaStream_t s) {
  check_n(n, "add_forward");
  if (n == 0) return;
  SAFNET_LAUNCH(add_kernel, grid_for(n, kThreads), kThreads, 0, s, n, a, b, y);
}

}  // namespace safnet::cuda
