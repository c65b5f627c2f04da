// Linear layers as GEMMs on the tiled SIMT GEMM (cuda/kernels/tiled_gemm.h) or on tensor cores
// (cuda/kernels/tc_gemm.h), and the bias gradient.
#include "cuda/kernels/linear.h"

#include <cstdint>

#include "cuda/access_trace.h"
#include "cuda/kernels/common.h"
#include "cuda/kernels/splitk_gemm.h"
#include "cuda/kernels/tc_gemm.h"
#include "cuda/kernels/tiled_gemm.h"
#include "cuda/kernels/weight_view.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

// y[n, o] = sum_i x[n, i] tau(w[o, i]) + b[o]. M = N, N = OUT, K = IN. The activations are also an
// operand table for the tensor cores (cuda/kernels/tc_gemm.h): a row is k itself, so cp.async copies
// them; backward-data's dy the same.
struct LinearForward {
  static constexpr bool kAKFast = true;
  static constexpr bool kBKFast = true;
  int M, N, K;
  const float* x;
  WeightView w;
  const float* bias;
  float* y;
  __device__ float a(int n, int i) const { return traced_load(x + static_cast<std::int64_t>(n) * K + i); }
  using ARow = int;
  __device__ int a_row(int i) const { return i; }
  __device__ const float* a_src(int i, int n) const { return x + static_cast<std::int64_t>(n) * K + i; }
  __device__ bool a_vectors() const { return K % 4 == 0 && reinterpret_cast<std::uintptr_t>(x) % 16 == 0; }
  __device__ float b(int i, int o) const { return load_weight(w, static_cast<std::int64_t>(o) * K + i); }
  __device__ void store(int n, int o, float v) const {
    y[static_cast<std::int64_t>(n) * N + o] = bias ? v + bias[o] : v;
  }
};

// dx[n, i] = sum_o dy[n, o] tau(w[o, i]). M = N, N = IN, K = OUT.
struct LinearBackwardData {
  static constexpr bool kAKFast = true;
  static constexpr bool kBKFast = false;
  int M, N, K;
  const float* dy;
  WeightView w;
  float* dx;
  __device__ float a(int n, int o) const { return traced_load(dy + static_cast<std::int64_t>(n) * K + o); }
  using ARow = int;
  __device__ int a_row(int o) const { return o; }
  __device__ const float* a_src(int o, int n) const { return dy + static_cast<std::int64_t>(n) * K + o; }
  __device__ bool a_vectors() const { return K % 4 == 0 && reinterpret_cast<std::uintptr_t>(dy) % 16 == 0; }
  __device__ float b(int o, int i) const { return load_weight(w, static_cast<std::int64_t>(o) * N + i); }
  __device__ void store(int n, int i, float v) const { dx[static_cast<std::int64_t>(n) * N + i] = v; }
};

// Element (n, feature) of a (batch, features) matrix, walked along n; null past the last feature
// (a ragged tile's extra rows or columns), which the cursor keeps as it steps.
struct BatchCursor {
  const float* at;
};

__device__ BatchCursor batch_cursor(const float* base, int features, int n, int feature) {
  return {feature < features ? base + static_cast<std::int64_t>(n) * features + feature : nullptr};
}

// dw[o, i] = tau'(raw[o, i]) sum_n dy[n, o] x[n, i]. M = OUT, N = IN, K = N.
struct LinearBackwardWeight {
  static constexpr bool kAKFast = false;
  static constexpr bool kBKFast = false;
  static constexpr int kSimtMinBlocks = 5;  // 48 registers, no spill
  int M, N, K;
  const float* x;
  const float* dy;
  SafGrad e;
  float* dw;
  __device__ float a(int o, int n) const { return dy[static_cast<std::int64_t>(n) * M + o]; }
  // dy and x walked along the batch for one output (A) or input (B) feature: a row apart per step.
  using ACursor = BatchCursor;
  __device__ BatchCursor a_cursor(int n, int o) const { return batch_cursor(dy, M, n, o); }
  __device__ const float* a_src(const BatchCursor& q) const { return q.at; }
  __device__ void a_advance(BatchCursor& q, int step) const { if (q.at) q.at += static_cast<std::int64_t>(step) * M; }
  using BCursor = BatchCursor;
  __device__ BatchCursor b_cursor(int n, int i) const { return batch_cursor(x, N, n, i); }
  __device__ const float* b_src(const BatchCursor& q) const { return q.at; }
  __device__ void b_advance(BatchCursor& q, int step) const { if (q.at) q.at += static_cast<std::int64_t>(step) * N; }
  __device__ void store(int o, int i, float v) const {
    const std::int64_t at = static_cast<std::int64_t>(o) * N + i;
    dw[at] = apply_saf_grad(e, at, v);
  }
};

__global__ void bias_grad_kernel(int n, int out, const float* dy, float* db) {
  for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < out; o += gridDim.x * blockDim.x) {
    float acc = 0.0f;
    for (int i = 0; i < n; ++i) acc += dy[static_cast<std::int64_t>(i) * out + o];
    db[o] = acc;
  }
}

void check_dims(int n, int in, int out, const char* op) {
  if (n < 1 || in < 1 || out < 1)
    arg_fail("cuda/kernels/linear.cu: ", op, ": bad dimensions n=", n, " in=", in, " out=", out);
  const std::int64_t big = std::int64_t{1} << 31;
  if (static_cast<std::int64_t>(n) * in >= big || static_cast<std::int64_t>(n) * out >= big ||
      static_cast<std::int64_t>(in) * out >= big)
    arg_fail("cuda/kernels/linear.cu: ", op, ": tensors of 2^31 or more elements are not supported");
}

}  // namespace

void linear_forward(int n, int in, int out, const float* x, const WeightView& w, const float* b, float* y,
                    cudaStream_t s, MathMode mode) {
  check_dims(n, in, out, "linear_forward");
  check_weight_storage(w.storage, "linear_forward");
  launch_gemm(LinearForward{n, out, in, x, w, b, y}, mode, s);
}

void linear_backward_data(int n, int in, int out, const float* dy, const WeightView& w, float* dx, cudaStream_t s,
                          MathMode mode) {
  check_dims(n, in, out, "linear_backward_data");
  check_weight_storage(w.storage, "linear_backward_data");
  launch_gemm(LinearBackwardData{n, in, out, dy, w, dx}, mode, s);
}

SplitKPlan linear_backward_weight_plan(int n, int in, int out, MathMode mode) {
  check_dims(n, in, out, "linear_backward_weight_plan");
  return plan_splitk_gemm(out, in, n, mode);
}

void linear_backward_weight(int n, int in, int out, const float* x, const float* dy, const SafGrad& e, float* dw,
                            float* db, const Workspace& ws, cudaStream_t s, MathMode mode) {
  const SplitKPlan plan = linear_backward_weight_plan(n, in, out, mode);
  check_workspace(ws, plan.workspace_bytes(), "cuda/kernels/linear.cu: linear_backward_weight");
  launch_splitk_gemm(LinearBackwardWeight{out, in, n, x, dy, e, dw}, plan, ws, mode, s);
  if (db) SAFNET_LAUNCH(bias_grad_kernel, grid_for(out, 128), 128, 0, s, n, out, dy, db);
}

void linear_backward_weight(int n, int in, int out, const float* x, const float* dy, const SafGrad& e, float* dw,
                            float* db, cudaStream_t s, MathMode mode) {
  const StreamWorkspace ws(linear_backward_weight_plan(n, in, out, mode).workspace_bytes(), s);
  linear_backward_weight(n, in, out, x, dy, e, dw, db, ws.get(), s, mode);
}

}  // namespace safnet::cuda
