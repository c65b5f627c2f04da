// Top-1 / top-5 counts of correct predictions from logits.
#include <cmath>
#include <cstdint>

#include "host/check.h"
#include "host/cpu/ops.h"

namespace safnet::cpu {

// The label's rank is the number of classes ordered before it. PyTorch orders NaN above every
// number (torch.argmax of a row of NaNs is 0), and argmax returns the first of equal maxima, so
// a NaN label is preceded only by NaNs at lower indices, and a number by every NaN, every larger
// number and equal numbers at lower indices.
void topk_correct(int n, int k, const float* logits, const std::int32_t* labels, std::int64_t* top1,
                  std::int64_t* top5, NanLogits rule, std::int64_t* nonfinite_rows) {
  if (n < 0 || k < 1) fail("host/cpu/accuracy.cpp: topk_correct: bad shape n=", n, " k=", k);
  std::int64_t c1 = 0, c5 = 0, cn = 0;
  for (int i = 0; i < n; ++i) {
    const int label = labels[i];
    if (label < 0 || label >= k)
      fail("host/cpu/accuracy.cpp: topk_correct: label ", label, " of row ", i, " outside [0, ", k, ")");
    const float* z = logits + static_cast<long>(i) * k;  // (K)
    bool finite = true;
    for (int j = 0; j < k; ++j) finite = finite && std::isfinite(z[j]);
    cn += !finite;
    const float v = z[label];
    const bool v_nan = std::isnan(v);
    if (v_nan && rule == NanLogits::wrong) continue;
    int rank = 0;
    for (int j = 0; j < k && rank < 5; ++j) {
      const bool z_nan = std::isnan(z[j]);
      rank += v_nan ? z_nan && j < label : z_nan || z[j] > v || (z[j] == v && j < label);
    }
    c1 += rank == 0;
    c5 += rank < 5;
  }
  *top1 = c1;
  *top5 = c5;
  if (nonfinite_rows) *nonfinite_rows = cn;
}

}  // namespace safnet::cpu
