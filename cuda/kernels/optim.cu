// SGD and AdamW update kernels; the bias corrections are computed once on the host, as the CPU
// optimizer computes them, so both apply the same per-element formula to the same constants.
#include "cuda/kernels/optim.h"

#include <cmath>

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 256;

__global__ void sgd_kernel(std::int64_t n, float* w, const float* g, float* buf, float lr, float mu, bool nesterov,
                           float wd) {
  for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float d = g[j] + wd * w[j];
    const float b = mu * buf[j] + d;
    buf[j] = b;
    const float u = nesterov ? d + mu * b : (mu != 0.0f ? b : d);
    w[j] -= lr * u;
  }
}

__global__ void adamw_kernel(std::int64_t n, float* w, const float* g, float* m, float* v, float lr, float b1,
                             float b2, float eps, float wd, float step, float bc2_sqrt) {
  for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float wj = w[j] * (1.0f - lr * wd);
    const float gj = g[j];
    const float mj = b1 * m[j] + (1.0f - b1) * gj;
    const float vj = b2 * v[j] + (1.0f - b2) * gj * gj;
    m[j] = mj;
    v[j] = vj;
    wj -= step * mj / (sqrtf(vj) / bc2_sqrt + eps);
    w[j] = wj;
  }
}

}  // namespace

void sgd_update(std::int64_t n, float* w, const float* g, float* buf, float lr, float momentum, bool nesterov,
                float weight_decay, cudaStream_t s) {
  if (n < 0) arg_fail("cuda/kernels/optim.cu: sgd_update: negative count ", n);
  if (n == 0) return;
  SAFNET_LAUNCH(sgd_kernel, grid_for(n, kThreads), kThreads, 0, s, n, w, g, buf, lr, momentum, nesterov,
                weight_decay);
}

void adamw_update(std::int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1, float beta2,
                  float eps, float weight_decay, std::int64_t step, cudaStream_t s) {
  if (n < 0) arg_fail("cuda/kernels/optim.cu: adamw_update: negative count ", n);
  if (step < 1) arg_fail("cuda/kernels/optim.cu: adamw_update: step ", step, " must be at least 1");
  if (n == 0) return;
  const float bc1 = 1.0f - std::pow(beta1, static_cast<float>(step));
  const float bc2 = 1.0f - std::pow(beta2, static_cast<float>(step));
  SAFNET_LAUNCH(adamw_kernel, grid_for(n, kThreads), kThreads, 0, s, n, w, g, m, v, lr, beta1, beta2, eps,
                weight_decay, lr / bc1, std::sqrt(bc2));
}

}  // namespace safnet::cuda
