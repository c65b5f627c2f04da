// The CPU backend's op kernels: plain functions on contiguous f32 NCHW buffers.
// Every op here is the reference the CUDA kernels are tested against; each has a naive loop
// twin in tests/cpu and its backward is checked against float64 central differences.
// Buffers are annotated with their shapes. Outputs are overwritten, never accumulated into.
#pragma once
#include <cmath>
#include <cstdint>

#include "cuda/geometry.h"
#include "cuda/saf.h"
#include "host/backend.h"
#include "host/dtype.h"

namespace safnet::cpu {

using ::safnet::BnGeom;
using ::safnet::ConvGeom;
using ::safnet::PoolGeom;

// What conv2d_forward applies to its sums as it stores them: eval-mode batch norm, then a
// residual add, then ReLU, each computed as its own op computes it, so the result equals
// conv2d -> batchnorm_eval -> add -> relu bit for bit while the outputs are still in cache.
struct ConvEpilogue {
  const float* scale = nullptr;     // (K) bn_eval_scale of each channel
  const float* mean = nullptr;      // (K) running mean
  const float* shift = nullptr;     // (K) beta
  const float* residual = nullptr;  // (N, K, OH, OW) added after the norm; null: none
  bool residual_first = false;      // the add reads the residual as its first operand
  bool relu = false;
};

// gamma / sqrt(running_var + eps): how eval-mode batch norm scales a channel.
inline float bn_eval_scale(float gamma, float var, float eps) {
  return gamma * static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + eps));
}

// y (N, K, OH, OW) = conv(x (N, C, H, W), w (K, C, R, S)); no bias; then the epilogue, if any.
void conv2d_forward(const ConvGeom& g, const float* x, const float* w, float* y,
                    const ConvEpilogue* epilogue = nullptr);
// dx (N, C, H, W) from dy (N, K, OH, OW), w (K, C, R, S).
void conv2d_backward_data(const ConvGeom& g, const float* dy, const float* w, float* dx);
// dw (K, C, R, S) from x (N, C, H, W), dy (N, K, OH, OW). Sums over the batch in a fixed
// order, so the result does not depend on the thread count.
void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, float* dw);

// y (N, OUT) = x (N, IN) w^T (OUT, IN) + b (OUT); b may be null.
void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y);
// dx (N, IN) = dy (N, OUT) w (OUT, IN)
void linear_backward_data(int n, int in, int out, const float* dy, const float* w, float* dx);
// dw (OUT, IN) = dy^T x; db (OUT) = sum_n dy (db may be null).
void linear_backward_weight(int n, int in, int out, const float* x, const float* dy, float* dw, float* db);

// Training: normalise with batch statistics; saves mean (C) and invstd (C) = 1/sqrt(var + eps)
// (biased var) for backward, and updates running_mean/var (C) with momentum m:
// running = (1 - m) running + m batch, where the running var uses the unbiased batch var.
void batchnorm_forward_train(const BnGeom& g, const float* x, const float* gamma, const float* beta,
                             float eps, float momentum, float* y, float* mean, float* invstd,
                             float* running_mean, float* running_var);
// Evaluation: normalise with running statistics.
void batchnorm_forward_eval(const BnGeom& g, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float eps, float* y);
// dx (N, C, HW), dgamma (C), dbeta (C) for the training-mode forward.
void batchnorm_backward(const BnGeom& g, const float* x, const float* dy, const float* gamma,
                        const float* mean, const float* invstd, float* dx, float* dgamma, float* dbeta);

void relu_forward(std::int64_t n, const float* x, float* y);
// dx = dy where y > 0, else 0 (y is the forward output).
void relu_backward(std::int64_t n, const float* y, const float* dy, float* dx);
void add_forward(std::int64_t n, const float* a, const float* b, float* y);

// He et al. option A shortcut: y (N, K, OH, OW) takes x (N, C, H, W) at every `stride`-th pixel
// (OH = ceil(H / stride)) and pads (K - C) / 2 zero channels on each side (K - C even).
void shortcut_a_forward(int n, int c, int h, int w, int stride, int k, const float* x, float* y);
void shortcut_a_backward(int n, int c, int h, int w, int stride, int k, const float* dy, float* dx);

// y (N, C) = mean over HW of x (N, C, HW).
void global_avgpool_forward(int n, int c, int hw, const float* x, float* y);
void global_avgpool_backward(int n, int c, int hw, const float* dy, float* dx);

// y (N, C, OH, OW); argmax (N, C, OH, OW) holds the flat input index h*W+w of each max.
void maxpool_forward(const PoolGeom& g, const float* x, float* y, std::int32_t* argmax);
void maxpool_backward(const PoolGeom& g, const float* dy, const std::int32_t* argmax, float* dx);

// Mean softmax cross-entropy of logits (N, K) against labels (N) with label smoothing eps
// (target = (1 - eps) onehot + eps / K). Saves probs (N, K) for backward. Returns the loss.
float softmax_ce_forward(int n, int k, const float* logits, const std::int32_t* labels, float smoothing,
                         float* probs);
// dlogits (N, K) = dloss * (probs - target) / N
void softmax_ce_backward(int n, int k, const float* probs, const std::int32_t* labels, float smoothing,
                         float dloss, float* dlogits);
// Number of rows whose label is the arg-max (top1) / among the 5 largest (top5) of logits (N, K),
// and of rows holding a NaN or infinite logit (*nonfinite_rows, when not null). The label's rank
// is the number of classes ordered before it: NaN above every number and equal to another NaN,
// ties to the lower index. Under NanLogits::as_torch that is torch.argmax exactly (a row of NaNs
// predicts class 0) and torch.topk up to how topk breaks a tie at the fifth place; under
// NanLogits::wrong a row whose label logit is NaN never counts. A label outside [0, K) throws.
void topk_correct(int n, int k, const float* logits, const std::int32_t* labels, std::int64_t* top1,
                  std::int64_t* top5, NanLogits rule = NanLogits::as_torch, std::int64_t* nonfinite_rows = nullptr);

// The weight view: out (count) = tau(dequant(raw)) for raw weights in `storage` dtype
// (f32, f16, bf16, fixed). This is how conv2d and linear load their weights.
void weight_view_load(const Saf& saf, DType storage, const void* raw, std::int64_t count, float* out);
// Raw-weight gradient epilogue: grad (count) *= tau'(raw (count)), raw in f32.
void weight_grad_epilogue(const Saf& saf, const float* raw, std::int64_t count, float* grad);

}  // namespace safnet::cpu
