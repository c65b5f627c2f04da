// Linear (fully connected) layers on the GPU; forward and backward-data read the raw weights in
// their storage dtype and apply dequant + SAF as they load the weight tile.
#pragma once
#include "cuda/hd.h"
#include "cuda/kernels/launch_geometry.h"
#include "cuda/kernels/weight_storage.h"
#include "cuda/kernels/workspace.h"
#include "cuda/launch.h"
#include "cuda/math_mode.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// y (N, OUT) = x (N, IN) tau(dequant(w.raw (OUT, IN)))^T + b (OUT); b may be null. `mode` picks
// the SIMT FP32 GEMM or the tensor cores (cuda/kernels/tc_gemm.h).
void linear_forward(int n, int in, int out, const float* x, const WeightView& w, const float* b, float* y,
                    cudaStream_t s, MathMode mode = MathMode::fp32);
// dx (N, IN) = dy (N, OUT) tau(dequant(w.raw (OUT, IN))), in math mode `mode`.
void linear_backward_data(int n, int in, int out, const float* dy, const WeightView& w, float* dx, cudaStream_t s,
                          MathMode mode = MathMode::fp32);
// dw (OUT, IN) = (dy^T x) * tau'(e.raw) (e.raw null: tau' = 1), in math mode `mode`; db (OUT) =
// sum_n dy (db may be null). dw is split-K over the batch as linear_backward_weight_plan says, every
// sum in a fixed order; `ws` holds linear_backward_weight_plan(..., mode).workspace_bytes(). Each db
// is summed by one thread in increasing n, in f32 whatever the mode.
void linear_backward_weight(int n, int in, int out, const float* x, const float* dy, const SafGrad& e, float* dw,
                            float* db, const Workspace& ws, cudaStream_t s, MathMode mode = MathMode::fp32);
// The same with a workspace of its own (StreamWorkspace): not inside a CUDA-graph capture.
void linear_backward_weight(int n, int in, int out, const float* x, const float* dy, const SafGrad& e, float* dw,
                            float* db, cudaStream_t s, MathMode mode = MathMode::fp32);
// The GEMM of the weight gradient (M = OUT, N = IN, K = n) and its partitions in math mode `mode`.
SplitKPlan linear_backward_weight_plan(int n, int in, int out, MathMode mode = MathMode::fp32);

}  // namespace safnet::cuda
