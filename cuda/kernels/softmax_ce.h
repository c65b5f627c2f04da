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
// Adds one batch of logits (N, K) against labels (N) to counts (device, three int64: top-1 hits,
// top-5 hits, rows holding a NaN or infinite logit) and to *loss_sum (device, one double) the mean
// loss *loss (device, one float) times N. The label's rank is the number of classes ordered before
// it: NaN above every number and equal to another NaN, ties to the lower index (torch.argmax; topk
// agrees except where it breaks ties at the fifth place its own way). With nan_label_wrong, a row
// whose label logit is NaN is never correct. A bad label (the kernel cannot throw) never counts.
// One block sums in a fixed order, so the result reproduces bit for bit.
void accumulate_metrics(int n, int k, const float* logits, const std::int32_t* labels, const float* loss,
                        bool nan_label_wrong, std::int64_t* counts, double* loss_sum, cudaStream_t s);

}  // namespace safnet::cuda
