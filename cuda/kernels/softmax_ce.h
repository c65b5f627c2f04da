// Softmax cross-entropy with label smoothing on the GPU, and top-1/top-5 counts.
#pragma once
#include "cuda/hd.h"
#include <cstdint>

#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// Mean softmax cross-entropy of logits (N, K) against labels (N) with label smoothing eps
// (target = (1 - eps) onehot + eps / K). Saves probs (N, K); writes the loss to *loss (device, 1
// float) rather than returning it, so nothing waits for the stream. A label outside [0, K) (the
// kernel cannot throw) makes the loss NaN.
void softmax_ce_forward(int n, int k, const float* logits, const std::int32_t* labels, float smoothing,
                        float* probs, float* loss, cudaStream_t s);
// dlogits (N, K) = dloss * (probs - target) / N; a row with a bad label gets no one-hot term.
void softmax_ce_backward(int n, int k, const float* probs, const std::int32_t* labels, float smoothing,
                         float dloss, float* dlogits, cudaStream_t s);
// *top1 / *top5 (device, one int64 each): rows whose label is the arg-max / among the 5 largest
// of logits (N, K); ties go to the lower index, a NaN ranks above every number, a NaN label logit
// or a bad label never counts.
void topk_correct(int n, int k, const float* logits, const std::int32_t* labels, std::int64_t* top1,
                  std::int64_t* top5, cudaStream_t s);

}  // namespace safnet::cuda
