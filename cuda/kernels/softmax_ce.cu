// Softmax cross-entropy and metric kernels: one block, one thread per row, and the per-row
// results summed in a fixed tree order, so the loss and counts reproduce bit for bit.
#include "cuda/kernels/softmax_ce.h"

#include <cmath>

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) softmax_ce_forward_kernel(int n, int k, const float* logits,
                                                                      const std::int32_t* labels, float smoothing,
                                                                      float* probs, float* loss) {
  __shared__ double buf[kThreads];
  const double off = static_cast<double>(smoothing) / k, on = 1.0 - smoothing + off;
  double total = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float* z = logits + static_cast<std::int64_t>(i) * k;  // (K)
    float* p = probs + static_cast<std::int64_t>(i) * k;         // (K)
    float m = z[0];
    for (int j = 1; j < k; ++j) m = z[j] > m ? z[j] : m;
    double sum = 0.0, zsum = 0.0;
    for (int j = 0; j < k; ++j) {
      sum += exp(static_cast<double>(z[j]) - m);
      zsum += z[j];
    }
    const double lse = m + log(sum);
    for (int j = 0; j < k; ++j) p[j] = static_cast<float>(exp(static_cast<double>(z[j]) - lse));
    const int label = labels[i];
    // -sum_j t_j log p_j with t = off + (on - off) onehot, and log p_j = z_j - lse.
    total += label >= 0 && label < k ? lse - off * zsum - (on - off) * z[label] : static_cast<double>(NAN);
  }
  const double sum = block_sum(total, buf);
  if (threadIdx.x == 0) *loss = static_cast<float>(sum / n);
}

__global__ void softmax_ce_backward_kernel(int n, int k, const float* probs, const std::int32_t* labels,
                                           float smoothing, float dloss, float* dlogits) {
  const float scale = dloss / static_cast<float>(n);
  const float off = smoothing / static_cast<float>(k), on = 1.0f - smoothing + off;
  const std::int64_t total = static_cast<std::int64_t>(n) * k;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int j = static_cast<int>(e % k);
    dlogits[e] = scale * (probs[e] - (j == labels[e / k] ? on : off));
  }
}

__global__ void __launch_bounds__(kThreads) metrics_kernel(int n, int k, const float* logits,
                                                           const std::int32_t* labels, const float* loss,
                                                           bool nan_label_wrong, std::int64_t* counts,
                                                           double* loss_sum) {
  __shared__ long long buf[kThreads];
  long long c1 = 0, c5 = 0, cn = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float* z = logits + static_cast<std::int64_t>(i) * k;  // (K)
    bool finite = true;  // NaN fails the comparison, inf exceeds the largest float
    for (int j = 0; j < k; ++j) finite = finite && fabsf(z[j]) <= 3.40282347e38f;
    cn += !finite;
    const int label = labels[i];
    if (label < 0 || label >= k) continue;
    const float v = z[label];
    const bool v_nan = v != v;
    if (v_nan && nan_label_wrong) continue;
    // Classes ordered before the label: NaNs at a lower index when the label is NaN, otherwise
    // every NaN, every larger logit and equal logits at a lower index.
    int rank = 0;
    for (int j = 0; j < k && rank < 5; ++j) {
      const bool z_nan = z[j] != z[j];
      rank += v_nan ? z_nan && j < label : z_nan || z[j] > v || (z[j] == v && j < label);
    }
    c1 += rank == 0;
    c5 += rank < 5;
  }
  c1 = block_sum(c1, buf);
  c5 = block_sum(c5, buf);
  cn = block_sum(cn, buf);
  if (threadIdx.x == 0) {
    counts[0] += c1;
    counts[1] += c5;
    counts[2] += cn;
    *loss_sum += static_cast<double>(*loss) * n;
  }
}

void check_args(int n, int k, float smoothing, const char* op) {
  if (n < 1 || k < 1) arg_fail("cuda/kernels/softmax_ce.cu: ", op, ": bad shape n=", n, " k=", k);
  if (!(smoothing >= 0.0f && smoothing <= 1.0f))
    arg_fail("cuda/kernels/softmax_ce.cu: ", op, ": label smoothing ", smoothing, " outside [0, 1]");
}

}  // namespace

void softmax_ce_forward(int n, int k, const float* logits, const std::int32_t* labels, float smoothing,
                        float* probs, float* loss, cudaStream_t s) {
  check_args(n, k, smoothing, "softmax_ce_forward");
  SAFNET_LAUNCH(softmax_ce_forward_kernel, 1, kThreads, 0, s, n, k, logits, labels, smoothing, probs, loss);
}

void softmax_ce_backward(int n, int k, const float* probs, const std::int32_t* labels, float smoothing,
                         float dloss, float* dlogits, cudaStream_t s) {
  check_args(n, k, smoothing, "softmax_ce_backward");
  const std::int64_t total = static_cast<std::int64_t>(n) * k;
  SAFNET_LAUNCH(softmax_ce_backward_kernel, grid_for(total, kThreads), kThreads, 0, s, n, k, probs, labels,
                smoothing, dloss, dlogits);
}

void accumulate_metrics(int n, int k, const float* logits, const std::int32_t* labels, const float* loss,
                        bool nan_label_wrong, std::int64_t* counts, double* loss_sum, cudaStream_t s) {
  if (n < 0 || k < 1) arg_fail("cuda/kernels/softmax_ce.cu: accumulate_metrics: bad shape n=", n, " k=", k);
  SAFNET_LAUNCH(metrics_kernel, 1, kThreads, 0, s, n, k, logits, labels, loss, nan_label_wrong, counts, loss_sum);
}

}  // namespace safnet::cuda
