// Conv2d on the GPU as implicit-GEMM kernels; forward and backward-data read the raw weights in
// their storage dtype and apply dequant + SAF as they load the weight tile.
#pragma once
#include "cuda/geometry.h"
#include "cuda/hd.h"
#include "cuda/kernels/launch_geometry.h"
#include "cuda/kernels/weight_storage.h"
#include "cuda/kernels/workspace.h"
#include "cuda/launch.h"
#include "cuda/math_mode.h"

namespace safnet::cuda::inline SAFNET_BUILD {

using ::safnet::ConvGeom;

// y (N, K, OH, OW) = conv(x (N, C, H, W), tau(dequant(w.raw (K, C, R, S)))); no bias. `mode`
// picks the SIMT FP32 GEMM or the tensor cores (cuda/kernels/tc_gemm.h).
void conv2d_forward(const ConvGeom& g, const float* x, const WeightView& w, float* y, cudaStream_t s,
                    MathMode mode = MathMode::fp32);

// What conv2d_forward_fused applies to each output as it stores it (the executor's conv2d_bn,
// host/fusion.h): eval-mode batch norm (scale gamma / sqrt(var + eps) as batchnorm_forward_eval
// takes it, hoisted out of each thread's row), then the residual add, then ReLU.
struct ConvEpilogue {
  const float* gamma = nullptr;     // (K)
  const float* beta = nullptr;      // (K)
  const float* mean = nullptr;      // (K) running mean
  const float* var = nullptr;       // (K) running var
  float eps = 1e-5f;
  const float* residual = nullptr;  // (N, K, OH, OW) or null
  bool residual_first = false;      // the add reads the residual as its first operand
  bool relu = false;
};
void conv2d_forward_fused(const ConvGeom& g, const float* x, const WeightView& w, const ConvEpilogue& e, float* y,
                          cudaStream_t s, MathMode mode = MathMode::fp32);
// dx (N, C, H, W) from dy (N, K, OH, OW) and tau(dequant(w.raw (K, C, R, S))), in math mode `mode`.
// The GEMM reads the filters transposed to (C, K, R, S), a copy of the stored words that the call
// makes first into `ws` (conv2d_backward_data_workspace_bytes(g, w.storage) bytes).
void conv2d_backward_data(const ConvGeom& g, const float* dy, const WeightView& w, float* dx, const Workspace& ws,
                          cudaStream_t s, MathMode mode = MathMode::fp32);
// The same with a workspace of its own (StreamWorkspace): not inside a CUDA-graph capture.
void conv2d_backward_data(const ConvGeom& g, const float* dy, const WeightView& w, float* dx, cudaStream_t s,
                          MathMode mode = MathMode::fp32);
std::size_t conv2d_backward_data_workspace_bytes(const ConvGeom& g, StorageFormat storage);
// dw (K, C, R, S) = (sum over the batch of dy x) * tau'(e.raw), the gradient of the raw weights
// (e.raw null: of tau(W) itself), in math mode `mode`. Split-K over the N*OH*OW positions as
// conv2d_backward_weight_plan says, each partial and their combination summed in a fixed order: the
// same bits on any schedule. `ws` holds conv2d_backward_weight_plan(g, mode).workspace_bytes() (none
// when the plan has one part).
void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, const SafGrad& e, float* dw,
                            const Workspace& ws, cudaStream_t s, MathMode mode = MathMode::fp32);
// The same with a workspace of its own (StreamWorkspace): not inside a CUDA-graph capture.
void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, const SafGrad& e, float* dw,
                            cudaStream_t s, MathMode mode = MathMode::fp32);
// The GEMM of the weight gradient (M = K, N = C*R*S, K = N*OH*OW) and its partitions in math mode `mode`.
SplitKPlan conv2d_backward_weight_plan(const ConvGeom& g, MathMode mode = MathMode::fp32);

}  // namespace safnet::cuda
