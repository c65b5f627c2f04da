// Top-1 / top-5 counts of correct predictions from logits.
#include <cstdint>

#include "host/check.h"
#include "host/cpu/ops.h"

namespace safnet::cpu {

// The label's rank is the number of classes ordered before it: a larger logit, an equal logit at
// a lower index (ties go to the lower index), or a NaN (ranked above every number, as PyTorch's
// topk and argmax do, so a NaN logit elsewhere in the row pushes the label down). A NaN label
// logit ranks last and is never correct.
void topk_correct(int n, int k, const float* logits, const std::int32_t* labels, std::int64_t* top1,
                  std::int64_t* top5) {
  if (n < 0 || k < 1) fail("host/cpu/accuracy.cpp: topk_correct: bad shape n=", n, " k=", k);
  std::int64_t c1 = 0, c5 = 0;
  for (int i = 0; i < n; ++i) {
    const int label = labels[i];
    if (label < 0 || label >= k)
      fail("host/cpu/accuracy.cpp: topk_correct: label ", label, " of row ", i, " outside [0, ", k, ")");
    const float* z = logits + static_cast<long>(i) * k;  // (K)
    const float v = z[label];
    if (v != v) continue;
    int rank = 0;
    for (int j = 0; j < k && rank < 5; ++j)
      if (z[j] > v || z[j] != z[j] || (z[j] == v && j < label)) ++rank;
    c1 += rank == 0;
    c5 += rank < 5;
  }
  *top1 = c1;
  *top5 = c5;
}

}  // namespace safnet::cpu
