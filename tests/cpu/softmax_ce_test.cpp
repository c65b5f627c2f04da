// Softmax cross-entropy and top-k accuracy against their definitions and float64 differences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"

namespace safnet::cpu {
namespace {

using ref::Vec;

TEST(SoftmaxCe, ForwardAndBackwardMatchDefinition) {
  struct Case {
    int n, k;
    float smoothing;
  };
  std::uint32_t seed = 1;
  for (const Case& c : {Case{1, 1, 0.0f}, Case{4, 10, 0.0f}, Case{7, 3, 0.1f}, Case{5, 13, 1.0f}}) {
    SCOPED_TRACE(detail::concat(c.n, "x", c.k, " eps ", c.smoothing));
    // Logits around 40: a softmax without the max shift would overflow exp in f32 at 89.
    const auto z = ref::random_floats(static_cast<std::size_t>(c.n) * c.k, seed++, 35.0f, 45.0f);
    std::vector<std::int32_t> labels(c.n);
    for (int i = 0; i < c.n; ++i) labels[i] = (i * 7 + 3) % c.k;
    std::vector<float> probs(z.size(), 1e30f), dz(z.size(), 1e30f);
    const float loss = softmax_ce_forward(c.n, c.k, z.data(), labels.data(), c.smoothing, probs.data());
    const float dloss = 0.75f;
    softmax_ce_backward(c.n, c.k, probs.data(), labels.data(), c.smoothing, dloss, dz.data());

    auto f = [&](const Vec& v) { return ref::softmax_ce(c.n, c.k, v, labels, c.smoothing); };
    const Vec zd = ref::to_double(z);
    // The loss is at most log k + 10 here; float64 evaluation with f32 rounding of the result.
    EXPECT_NEAR(loss, f(zd), 8 * ref::kU32 * (std::log(c.k) + 10.0) + 1e-6);
    Vec want_p(z.size());
    for (int i = 0; i < c.n; ++i) {
      double m = -1e300, s = 0.0;
      for (int j = 0; j < c.k; ++j) m = std::max(m, zd[static_cast<std::size_t>(i) * c.k + j]);
      for (int j = 0; j < c.k; ++j) s += std::exp(zd[static_cast<std::size_t>(i) * c.k + j] - m);
      for (int j = 0; j < c.k; ++j)
        want_p[static_cast<std::size_t>(i) * c.k + j] = std::exp(zd[static_cast<std::size_t>(i) * c.k + j] - m) / s;
    }
    // Probabilities in (0, 1]: the f32 logits feed a float64 softmax rounded once, and the
    // exponent's argument carries up to u |z| ~ 45 u of error.
    ref::expect_close(probs, want_p, 64 * ref::kU32, "probs");
    Vec want = ref::fd_gradient(f, zd, 1e-5);
    for (double& g : want) g *= dloss;
    // dloss (p - t) / n with p off by 64 u and three more roundings; differences truncated at
    // h^2 |L'''| / 6 <= 1e-10.
    ref::expect_close(dz, want, dloss * 70 * ref::kU32 / c.n + 1e-9, "dlogits");
  }
}

TEST(SoftmaxCe, RejectsLabelsOutOfRange) {
  const float z[4] = {0, 1, 2, 3};
  float p[4];
  const std::int32_t bad[2] = {0, 2};
  EXPECT_THROW(softmax_ce_forward(2, 2, z, bad, 0.0f, p), Error);
  EXPECT_THROW(softmax_ce_backward(2, 2, z, bad, 0.0f, 1.0f, p), Error);
  const std::int32_t neg[1] = {-1};
  EXPECT_THROW(softmax_ce_forward(1, 4, z, neg, 0.0f, p), Error);
}

// The rank of the label by sorting (value descending, NaN first, lower index first on ties).
void naive_topk(int n, int k, const std::vector<float>& z, const std::vector<std::int32_t>& labels, std::int64_t* t1,
                std::int64_t* t5) {
  *t1 = *t5 = 0;
  for (int i = 0; i < n; ++i) {
    const float* row = z.data() + static_cast<std::size_t>(i) * k;
    if (std::isnan(row[labels[i]])) continue;
    std::vector<int> order(k);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      if (std::isnan(row[a]) || std::isnan(row[b])) return std::isnan(row[a]) && !std::isnan(row[b]);
      return row[a] > row[b];
    });
    const int rank = static_cast<int>(std::find(order.begin(), order.end(), labels[i]) - order.begin());
    *t1 += rank == 0;
    *t5 += rank < 5;
  }
}

TEST(TopkCorrect, HandPickedRows) {
  const float nan = std::nanf("");
  // k = 6 classes; each row with its label and whether it is top-1 / top-5.
  const std::vector<float> z = {
      0, 5, 1, 1, 1, 1,    // label 1 is the max: top1, top5
      2, 2, 2, 2, 2, 2,    // all tied, label 0: the lower index wins -> top1
      2, 2, 2, 2, 2, 2,    // all tied, label 5: five lower indices precede it -> neither
      2, 2, 2, 2, 2, 2,    // all tied, label 4: rank 4 -> top5 only
      nan, 1, 0, 0, 0, 0,  // NaN elsewhere ranks above the label: top5 only
      9, nan, 0, 0, 0, 0,  // NaN at the label: never correct
      -1, -1, -1, -1, -1, -0.5f,  // label 5 strictly largest: top1
  };
  const std::vector<std::int32_t> labels = {1, 0, 5, 4, 1, 1, 5};
  std::int64_t t1 = -1, t5 = -1;
  topk_correct(7, 6, z.data(), labels.data(), &t1, &t5);
  EXPECT_EQ(t1, 3);
  EXPECT_EQ(t5, 5);
  // Fewer than five classes: every finite label logit is within the top 5.
  const float z3[3] = {3, 2, 1};
  const std::int32_t l3[1] = {2};
  topk_correct(1, 3, z3, l3, &t1, &t5);
  EXPECT_EQ(t1, 0);
  EXPECT_EQ(t5, 1);
}

TEST(TopkCorrect, MatchesSortingOnRandomRows) {
  const int n = 300, k = 12;
  // Coarse values so ties are common; a few NaNs.
  std::vector<float> z = ref::random_floats(static_cast<std::size_t>(n) * k, 5, 0.0f, 4.0f);
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = i % 97 == 0 ? std::nanf("") : std::floor(z[i]);
  std::vector<std::int32_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = (i * 5 + 1) % k;
  std::int64_t t1, t5, w1, w5;
  topk_correct(n, k, z.data(), labels.data(), &t1, &t5);
  naive_topk(n, k, z, labels, &w1, &w5);
  EXPECT_EQ(t1, w1);
  EXPECT_EQ(t5, w5);
  EXPECT_GT(w1, 0);
  EXPECT_LT(w5, n);
}

TEST(TopkCorrect, RejectsLabelsOutOfRange) {
  const float z[2] = {0, 1};
  const std::int32_t bad[1] = {2};
  std::int64_t t1, t5;
  EXPECT_THROW(topk_correct(1, 2, z, bad, &t1, &t5), Error);
}

}  // namespace
}  // namespace safnet::cpu
