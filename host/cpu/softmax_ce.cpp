// Softmax cross-entropy with label smoothing: the loss, its saved probabilities, and its gradient.
#include <cmath>
#include <cstdint>
#include <vector>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {

namespace {

void check_args(int n, int k, const std::int32_t* labels, float smoothing, const char* op) {
  if (n < 1 || k < 1) fail("host/cpu/softmax_ce.cpp: ", op, ": bad shape n=", n, " k=", k);
  if (!(smoothing >= 0.0f && smoothing <= 1.0f))
    fail("host/cpu/softmax_ce.cpp: ", op, ": label smoothing ", smoothing, " outside [0, 1]");
  for (int i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= k)
      fail("host/cpu/softmax_ce.cpp: ", op, ": label ", labels[i], " of row ", i, " outside [0, ", k, ")");
}

}  // namespace

float softmax_ce_forward(int n, int k, const float* logits, const std::int32_t* labels, float smoothing,
                         float* probs) {
  check_args(n, k, labels, smoothing, "softmax_ce_forward");
  const double off = static_cast<double>(smoothing) / k, on = 1.0 - smoothing + off;
  std::vector<double> row_loss(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static) if (static_cast<long>(n) * k > kParallelMin)
  for (int i = 0; i < n; ++i) {
    const float* z = logits + static_cast<long>(i) * k;  // (K)
    float* p = probs + static_cast<long>(i) * k;         // (K)
    float m = z[0];
    for (int j = 1; j < k; ++j) m = z[j] > m ? z[j] : m;
    double sum = 0.0, zsum = 0.0;
    for (int j = 0; j < k; ++j) {
      sum += std::exp(static_cast<double>(z[j]) - m);
      zsum += z[j];
    }
    const double lse = m + std::log(sum);
    for (int j = 0; j < k; ++j) p[j] = static_cast<float>(std::exp(static_cast<double>(z[j]) - lse));
    // -sum_j t_j log p_j with t = off + (on - off) onehot, and log p_j = z_j - lse.
    row_loss[static_cast<std::size_t>(i)] = lse - off * zsum - (on - off) * z[labels[i]];
  }
  double total = 0.0;
  for (double l : row_loss) total += l;
  return static_cast<float>(total / n);
}

void softmax_ce_backward(int n, int k, const float* probs, const std::int32_t* labels, float smoothing, float dloss,
                         float* dlogits) {
  check_args(n, k, labels, smoothing, "softmax_ce_backward");
  const float scale = dloss / static_cast<float>(n);
  const float off = smoothing / static_cast<float>(k), on = 1.0f - smoothing + off;
#pragma omp parallel for schedule(static) if (static_cast<long>(n) * k > kParallelMin)
  for (int i = 0; i < n; ++i) {
    const float* p = probs + static_cast<long>(i) * k;
    float* d = dlogits + static_cast<long>(i) * k;
    for (int j = 0; j < k; ++j) d[j] = scale * (p[j] - (j == labels[i] ? on : off));
  }
}

}  // namespace safnet::cpu
