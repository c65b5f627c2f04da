// Batch-norm kernels. The training statistics and the backward sums run on (parts, C) blocks
// (batchnorm_plan): block (q, c) sums partition q of channel c's N*HW values (each thread its
// strided values in float, then a fixed double tree) into the workspace, and the next launch
// combines the channel's partitions by a fixed tree too, so every block that needs a channel total
// gets the same bits on any schedule. Evaluation derives a channel's scale and shift once per block
// and indexes a (HW, C, N) grid in 32-bit arithmetic.
#include "cuda/kernels/batchnorm.h"

#include <cstdint>

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = kBnThreads;

// Offsets in x (N, C, HW) of channel c's values i = first, first + kThreads, ... (i = n HW + hw):
// one division to start, none per step. Unsigned, since the step past the last value may wrap
// (its offset is never used); the launchers keep N*C*HW + kThreads below 2^31.
struct ChannelWalk {
  unsigned hw, off;                         // the current value's place in its plane, and in x
  unsigned plane, step_hw, step_off, wrap;  // HW; what one step adds; from a plane's end to the next

  __device__ ChannelWalk(const BnGeom& g, int c, int first)
      : hw(static_cast<unsigned>(first % g.hw)),
        off(static_cast<unsigned>((first / g.hw * g.c + c) * g.hw) + hw),
        plane(static_cast<unsigned>(g.hw)),
        step_hw(kThreads % plane),
        step_off(kThreads / plane * static_cast<unsigned>(g.c) * plane + step_hw),
        wrap(static_cast<unsigned>(g.c - 1) * plane) {}

  __device__ void next() {
    hw += step_hw;
    off += step_off;
    if (hw >= plane) {
      hw -= plane;
      off += wrap;
    }
  }
};

// Calls f(offset in x) for this thread's values of block (q, c)'s partition, in increasing i.
template <typename F>
__device__ void for_partition(const BnGeom& g, int per_part, F f) {
  const int count = g.n * g.hw;
  const int begin = static_cast<int>(blockIdx.x) * per_part;
  const int end = count - begin < per_part ? count : begin + per_part;
  int i = begin + static_cast<int>(threadIdx.x);
  if (i >= end) return;
  ChannelWalk w(g, static_cast<int>(blockIdx.y), i);
  for (; i < end; i += kThreads, w.next()) f(w.off);
}

// Channel c's total of its partitions' sums part[0, parts): thread t adds t, t + kThreads, ... in
// order, then the block tree. The same bits in every block that asks.
__device__ double channel_total(const double* part, int parts, double* buf) {
  double v = 0.0;
  for (int q = static_cast<int>(threadIdx.x); q < parts; q += kThreads) v += part[q];
  return block_sum(v, buf);
}

// Training, launch 1: partial sums of x. sums (C, parts).
__global__ void __launch_bounds__(kThreads) bn_sum_kernel(BnGeom g, int per_part, const float* x, double* sums) {
  __shared__ double buf[kThreads];
  float acc = 0.0f;
  for_partition(g, per_part, [&](unsigned e) { acc += x[e]; });
  const double s = block_sum(static_cast<double>(acc), buf);
  if (threadIdx.x == 0) sums[blockIdx.y * gridDim.x + blockIdx.x] = s;
}

// Training, launch 2: every block combines its channel's mean; block 0 of the channel publishes it
// and updates running_mean. Then partial sums of (x - mean)^2 around that mean: no cancellation,
// unlike E[x^2] - E[x]^2. sums, sq (C, parts).
__global__ void __launch_bounds__(kThreads)
    bn_centered_sq_kernel(BnGeom g, int per_part, const float* x, const double* sums, float momentum, float* mean,
                          float* running_mean, double* sq) {
  __shared__ double buf[kThreads];
  const int c = static_cast<int>(blockIdx.y), parts = static_cast<int>(gridDim.x);
  const double count = static_cast<double>(g.n) * g.hw;
  const float muf = static_cast<float>(channel_total(sums + c * parts, parts, buf) / count);
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    mean[c] = muf;
    if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * muf;
  }
  float acc = 0.0f;
  for_partition(g, per_part, [&](unsigned e) {
    const float d = x[e] - muf;
    acc += d * d;
  });
  const double s = block_sum(static_cast<double>(acc), buf);
  if (threadIdx.x == 0) sq[c * parts + static_cast<int>(blockIdx.x)] = s;
}

// Training, launch 3: every block combines its channel's variance; block 0 of the channel
// publishes invstd and updates running_var (unbiased); then y for the block's partition.
__global__ void __launch_bounds__(kThreads)
    bn_normalize_kernel(BnGeom g, int per_part, const float* x, const float* gamma, const float* beta, float eps,
                        float momentum, const double* sq, const float* mean, float* invstd, float* running_var,
                        float* y) {
  __shared__ double buf[kThreads];
  const int c = static_cast<int>(blockIdx.y), parts = static_cast<int>(gridDim.x);
  const double count = static_cast<double>(g.n) * g.hw;
  const double var = channel_total(sq + c * parts, parts, buf) / count;
  const float inv = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    invstd[c] = inv;
    if (running_var)
      running_var[c] = (1.0f - momentum) * running_var[c] + momentum * static_cast<float>(var * count / (count - 1));
  }
  const float muf = mean[c], scale = gamma[c] * inv, shift = beta[c];
  for_partition(g, per_part, [&](unsigned e) { y[e] = (x[e] - muf) * scale + shift; });
}

// Backward, launch 1: partial sums of dy and of dy (x - mean). sums (2, C, parts).
__global__ void __launch_bounds__(kThreads)
    bn_backward_sums_kernel(BnGeom g, int per_part, const float* x, const float* dy, const float* mean,
                            double* sums) {
  __shared__ double buf[kThreads];
  const int c = static_cast<int>(blockIdx.y), parts = static_cast<int>(gridDim.x);
  const float mu = mean[c];
  float a = 0.0f, b = 0.0f;
  for_partition(g, per_part, [&](unsigned e) {
    a += dy[e];
    b += dy[e] * (x[e] - mu);
  });
  const double sa = block_sum(static_cast<double>(a), buf);
  const double sb = block_sum(static_cast<double>(b), buf);
  if (threadIdx.x == 0) {
    sums[c * parts + static_cast<int>(blockIdx.x)] = sa;
    sums[(g.c + c) * parts + static_cast<int>(blockIdx.x)] = sb;
  }
}

// Backward, launch 2: every block combines its channel's sums; block 0 of the channel publishes
// dbeta and dgamma; then dx for the block's partition.
__global__ void __launch_bounds__(kThreads)
    bn_backward_dx_kernel(BnGeom g, int per_part, const float* x, const float* dy, const float* gamma,
                          const float* mean, const float* invstd, const double* sums, float* dx, float* dgamma,
                          float* dbeta) {
  __shared__ double buf[kThreads];
  const int c = static_cast<int>(blockIdx.y), parts = static_cast<int>(gridDim.x);
  const double count = static_cast<double>(g.n) * g.hw;
  const float mu = mean[c], inv = invstd[c];
  const double sum_dy = channel_total(sums + c * parts, parts, buf);
  const double sum_dy_xc = channel_total(sums + (g.c + c) * parts, parts, buf);
  const double dg = sum_dy_xc * inv;
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    dbeta[c] = static_cast<float>(sum_dy);
    dgamma[c] = static_cast<float>(dg);
  }
  // dx = gamma inv (dy - dbeta / M - xhat dgamma / M), xhat = (x - mean) inv
  const double k1 = static_cast<double>(gamma[c]) * inv;
  const float a1 = static_cast<float>(k1);
  const float a2 = static_cast<float>(-k1 * inv * dg / count);
  const float a3 = static_cast<float>(-k1 * sum_dy / count);
  for_partition(g, per_part, [&](unsigned e) { dx[e] = a1 * dy[e] + a2 * (x[e] - mu) + a3; });
}

// Evaluation on grid (ceil(HW / threads), C, min(N, 65535)): thread 0 derives channel c's scale
// (FP64, as the CPU does) and shift once for the block; each thread then takes one hw of the
// planes (n, c) for n = blockIdx.z, blockIdx.z + gridDim.z, ...
__global__ void __launch_bounds__(256)
    bn_eval_kernel(BnGeom g, const float* x, const float* gamma, const float* beta, const float* running_mean,
                   const float* running_var, float eps, float* y) {
  __shared__ float coef[3];  // mean, scale, shift
  const int c = static_cast<int>(blockIdx.y);
  if (threadIdx.x == 0) {
    coef[0] = running_mean[c];
    coef[1] = gamma[c] * static_cast<float>(1.0 / sqrt(static_cast<double>(running_var[c]) + static_cast<double>(eps)));
    coef[2] = beta[c];
  }
  __syncthreads();
  const int hw = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (hw >= g.hw) return;
  const float mu = coef[0], scale = coef[1], shift = coef[2];
  for (int n = static_cast<int>(blockIdx.z); n < g.n; n += static_cast<int>(gridDim.z)) {
    const int e = (n * g.c + c) * g.hw + hw;
    y[e] = (x[e] - mu) * scale + shift;
  }
}

void check_geom(const BnGeom& g, const char* op) {
  if (g.n < 1 || g.c < 1 || g.hw < 1)
    arg_fail("cuda/kernels/batchnorm.cu: ", op, ": bad geometry n=", g.n, " c=", g.c, " hw=", g.hw);
  // Offsets are 32-bit (with room for a walk's last step) and channels index grid.y.
  if (static_cast<std::int64_t>(g.n) * g.c * g.hw + kThreads >= std::int64_t{1} << 31 || g.c > 65535)
    arg_fail("cuda/kernels/batchnorm.cu: ", op, ": n=", g.n, " c=", g.c, " hw=", g.hw,
             " is too large (at most 2^31 - 257 values and 65535 channels)");
}

// The training forward's plan, after its own check: a variance needs two values.
BnPlan train_plan(const BnGeom& g) {
  const BnPlan plan = batchnorm_plan(g);
  if (plan.count < 2)
    arg_fail("cuda/kernels/batchnorm.cu: batchnorm_forward_train: needs more than one value per channel");
  return plan;
}

}  // namespace

BnPlan batchnorm_plan(const BnGeom& g) {
  check_geom(g, "batchnorm_plan");
  return plan_batchnorm(g.n, g.c, g.hw);
}

BnEvalGrid batchnorm_eval_grid(const BnGeom& g) {
  check_geom(g, "batchnorm_eval_grid");
  return plan_batchnorm_eval(g.n, g.c, g.hw);
}

void batchnorm_forward_train(const BnGeom& g, const float* x, const float* gamma, const float* beta, float eps,
                             float momentum, float* y, float* mean, float* invstd, float* running_mean,
                             float* running_var, const Workspace& ws, cudaStream_t s) {
  const BnPlan plan = train_plan(g);
  check_workspace(ws, plan.workspace_bytes(), "cuda/kernels/batchnorm.cu: batchnorm_forward_train");
  auto* sums = static_cast<double*>(ws.ptr);  // (C, parts)
  double* sq = sums + plan.blocks();          // (C, parts)
  const dim3 grid(static_cast<unsigned>(plan.parts), static_cast<unsigned>(g.c));
  SAFNET_LAUNCH(bn_sum_kernel, grid, kThreads, 0, s, g, plan.per_part, x, sums);
  SAFNET_LAUNCH(bn_centered_sq_kernel, grid, kThreads, 0, s, g, plan.per_part, x, sums, momentum, mean, running_mean,
                sq);
  SAFNET_LAUNCH(bn_normalize_kernel, grid, kThreads, 0, s, g, plan.per_part, x, gamma, beta, eps, momentum, sq, mean,
                invstd, running_var, y);
}

void batchnorm_forward_train(const BnGeom& g, const float* x, const float* gamma, const float* beta, float eps,
                             float momentum, float* y, float* mean, float* invstd, float* running_mean,
                             float* running_var, cudaStream_t s) {
  const StreamWorkspace ws(train_plan(g).workspace_bytes(), s);  // arguments checked before allocating
  batchnorm_forward_train(g, x, gamma, beta, eps, momentum, y, mean, invstd, running_mean, running_var, ws.get(), s);
}

void batchnorm_forward_eval(const BnGeom& g, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float eps, float* y,
                            cudaStream_t s) {
  const BnEvalGrid gr = batchnorm_eval_grid(g);
  const dim3 grid(static_cast<unsigned>(gr.x), static_cast<unsigned>(gr.y), static_cast<unsigned>(gr.z));
  SAFNET_LAUNCH(bn_eval_kernel, grid, gr.threads, 0, s, g, x, gamma, beta, running_mean, running_var, eps, y);
}

void batchnorm_backward(const BnGeom& g, const float* x, const float* dy, const float* gamma, const float* mean,
                        const float* invstd, float* dx, float* dgamma, float* dbeta, const Workspace& ws,
                        cudaStream_t s) {
  const BnPlan plan = batchnorm_plan(g);
  check_workspace(ws, plan.workspace_bytes(), "cuda/kernels/batchnorm.cu: batchnorm_backward");
  auto* sums = static_cast<double*>(ws.ptr);  // (2, C, parts)
  const dim3 grid(static_cast<unsigned>(plan.parts), static_cast<unsigned>(g.c));
  SAFNET_LAUNCH(bn_backward_sums_kernel, grid, kThreads, 0, s, g, plan.per_part, x, dy, mean, sums);
  SAFNET_LAUNCH(bn_backward_dx_kernel, grid, kThreads, 0, s, g, plan.per_part, x, dy, gamma, mean, invstd, sums, dx,
                dgamma, dbeta);
}

void batchnorm_backward(const BnGeom& g, const float* x, const float* dy, const float* gamma, const float* mean,
                        const float* invstd, float* dx, float* dgamma, float* dbeta, cudaStream_t s) {
  const StreamWorkspace ws(batchnorm_plan(g).workspace_bytes(), s);
  batchnorm_backward(g, x, dy, gamma, mean, invstd, dx, dgamma, dbeta, ws.get(), s);
}

}  // namespace safnet::cuda
