// Batch-norm kernels: one block per channel for the statistics, so each channel's sums run in a
// fixed order (each thread's strided elements in float, then a fixed double tree) on any schedule.
#include "cuda/kernels/batchnorm.h"

#include <cstdint>

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 256;

// Element i of channel c's N*HW values.
__device__ std::int64_t at(const BnGeom& g, int c, std::int64_t i) {
  return (i / g.hw * g.c + c) * g.hw + i % g.hw;
}

__global__ void __launch_bounds__(kThreads) bn_train_kernel(BnGeom g, const float* x, const float* gamma,
                                                            const float* beta, float eps, float momentum, float* y,
                                                            float* mean, float* invstd, float* running_mean,
                                                            float* running_var) {
  __shared__ double buf[kThreads];
  const int c = blockIdx.x;
  const std::int64_t count = static_cast<std::int64_t>(g.n) * g.hw;
  float acc = 0.0f;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += x[at(g, c, i)];
  const double mu = block_sum(static_cast<double>(acc), buf) / static_cast<double>(count);
  const float muf = static_cast<float>(mu);
  // Second pass around the mean: no cancellation, unlike E[x^2] - E[x]^2.
  acc = 0.0f;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const float d = x[at(g, c, i)] - muf;
    acc += d * d;
  }
  const double var = block_sum(static_cast<double>(acc), buf) / static_cast<double>(count);
  const float inv = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
  if (threadIdx.x == 0) {
    mean[c] = muf;
    invstd[c] = inv;
    if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * muf;
    if (running_var)
      running_var[c] = (1.0f - momentum) * running_var[c] +
                       momentum * static_cast<float>(var * static_cast<double>(count) / static_cast<double>(count - 1));
  }
  const float scale = gamma[c] * inv, shift = beta[c];
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const std::int64_t e = at(g, c, i);
    y[e] = (x[e] - muf) * scale + shift;
  }
}

__global__ void bn_eval_kernel(BnGeom g, const float* x, const float* gamma, const float* beta,
                               const float* running_mean, const float* running_var, float eps, float* y) {
  const std::int64_t total = static_cast<std::int64_t>(g.n) * g.c * g.hw;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i / g.hw % g.c);
    const float scale =
        gamma[c] * static_cast<float>(1.0 / sqrt(static_cast<double>(running_var[c]) + static_cast<double>(eps)));
    y[i] = (x[i] - running_mean[c]) * scale + beta[c];
  }
}

__global__ void __launch_bounds__(kThreads) bn_backward_kernel(BnGeom g, const float* x, const float* dy,
                                                               const float* gamma, const float* mean,
                                                               const float* invstd, float* dx, float* dgamma,
                                                               float* dbeta) {
  __shared__ double buf[kThreads];
  const int c = blockIdx.x;
  const std::int64_t count = static_cast<std::int64_t>(g.n) * g.hw;
  const float mu = mean[c], inv = invstd[c];
  float a = 0.0f, b = 0.0f;  // sum dy, sum dy (x - mean)
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const std::int64_t e = at(g, c, i);
    a += dy[e];
    b += dy[e] * (x[e] - mu);
  }
  const double sum_dy = block_sum(static_cast<double>(a), buf);
  const double sum_dy_xc = block_sum(static_cast<double>(b), buf);
  const double dg = sum_dy_xc * inv;
  if (threadIdx.x == 0) {
    dbeta[c] = static_cast<float>(sum_dy);
    dgamma[c] = static_cast<float>(dg);
  }
  // dx = gamma inv (dy - dbeta / M - xhat dgamma / M), xhat = (x - mean) inv
  const double k1 = static_cast<double>(gamma[c]) * inv;
  const float a1 = static_cast<float>(k1);
  const float a2 = static_cast<float>(-k1 * inv * dg / static_cast<double>(count));
  const float a3 = static_cast<float>(-k1 * sum_dy / static_cast<double>(count));
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) {
    const std::int64_t e = at(g, c, i);
    dx[e] = a1 * dy[e] + a2 * (x[e] - mu) + a3;
  }
}

void check_geom(const BnGeom& g, const char* op) {
  if (g.n < 1 || g.c < 1 || g.hw < 1)
    arg_fail("cuda/kernels/batchnorm.cu: ", op, ": bad geometry n=", g.n, " c=", g.c, " hw=", g.hw);
}

}  // namespace

void batchnorm_forward_train(const BnGeom& g, const float* x, const float* gamma, const float* beta, float eps,
                             float momentum, float* y, float* mean, float* invstd, float* running_mean,
                             float* running_var, cudaStream_t s) {
  check_geom(g, "batchnorm_forward_train");
  if (static_cast<std::int64_t>(g.n) * g.hw < 2)
    arg_fail("cuda/kernels/batchnorm.cu: batchnorm_forward_train: needs more than one value per channel");
  SAFNET_LAUNCH(bn_train_kernel, g.c, kThreads, 0, s, g, x, gamma, beta, eps, momentum, y, mean, invstd,
                running_mean, running_var);
}

void batchnorm_forward_eval(const BnGeom& g, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float eps, float* y,
                            cudaStream_t s) {
  check_geom(g, "batchnorm_forward_eval");
  const std::int64_t total = static_cast<std::int64_t>(g.n) * g.c * g.hw;
  SAFNET_LAUNCH(bn_eval_kernel, grid_for(total, kThreads), kThreads, 0, s, g, x, gamma, beta, running_mean,
                running_var, eps, y);
}

void batchnorm_backward(const BnGeom& g, const float* x, const float* dy, const float* gamma, const float* mean,
                        const float* invstd, float* dx, float* dgamma, float* dbeta, cudaStream_t s) {
  check_geom(g, "batchnorm_backward");
  SAFNET_LAUNCH(bn_backward_kernel, g.c, kThreads, 0, s, g, x, dy, gamma, mean, invstd, dx, dgamma, dbeta);
}

}  // namespace safnet::cuda
