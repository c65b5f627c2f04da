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

// The rank of the label by sorting (NaN first, then value descending, lower index first on ties:
// torch.argmax's order), and the rows holding a NaN or infinity.
void naive_topk(int n, int k, const std::vector<float>& z, const std::vector<std::int32_t>& labels, NanLogits rule,
                std::int64_t* t1, std::int64_t* t5, std::int64_t* nonfinite) {
  *t1 = *t5 = *nonfinite = 0;
  for (int i = 0; i < n; ++i) {
    const float* row = z.data() + static_cast<std::size_t>(i) * k;
    *nonfinite += std::any_of(row, row + k, [](float v) { return !std::isfinite(v); });
    if (rule == NanLogits::wrong && std::isnan(row[labels[i]])) continue;
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

// Top-1 / top-5 of one row of k logits under a rule, through topk_correct.
std::pair<bool, bool> row_hits(std::vector<float> z, int label, NanLogits rule) {
  std::int64_t t1 = -1, t5 = -1, nf = -1;
  const std::int32_t l[1] = {label};
  topk_correct(1, static_cast<int>(z.size()), z.data(), l, &t1, &t5, rule, &nf);
  return {t1 == 1, t5 == 1};
}

TEST(TopkCorrect, HandPickedRows) {
  const float nan = std::nanf(""), inf = INFINITY;
  using P = std::pair<bool, bool>;  // top-1, top-5
  const auto T = NanLogits::as_torch, W = NanLogits::wrong;
  for (const NanLogits r : {T, W}) {
    SCOPED_TRACE(r == W ? "wrong" : "as_torch");
    EXPECT_EQ(row_hits({0, 5, 1, 1, 1, 1}, 1, r), P(true, true));  // the max
    EXPECT_EQ(row_hits({2, 2, 2, 2, 2, 2}, 0, r), P(true, true));  // all tied: the lower index wins
    EXPECT_EQ(row_hits({2, 2, 2, 2, 2, 2}, 5, r), P(false, false));  // five lower indices precede it
    EXPECT_EQ(row_hits({2, 2, 2, 2, 2, 2}, 4, r), P(false, true));   // rank 4
    EXPECT_EQ(row_hits({nan, 1, 0, 0, 0, 0}, 1, r), P(false, true));  // a NaN elsewhere ranks above
    EXPECT_EQ(row_hits({-1, -1, -1, -1, -1, -0.5f}, 5, r), P(true, true));
    EXPECT_EQ(row_hits({3, 2, 1}, 2, r), P(false, true));  // fewer than five classes
    // Infinities are numbers: +inf beats every finite logit, ties among infinities go by index.
    EXPECT_EQ(row_hits({1, inf, 2, inf}, 1, r), P(true, true));
    EXPECT_EQ(row_hits({1, inf, 2, inf}, 3, r), P(false, true));
    EXPECT_EQ(row_hits({-inf, -inf, -inf}, 0, r), P(true, true));
    EXPECT_EQ(row_hits({-inf, -inf, -inf, -inf, -inf, -inf}, 5, r), P(false, false));
    EXPECT_EQ(row_hits({inf, nan, inf}, 0, r), P(false, true));  // NaN above +inf
  }
  // A row of NaNs predicts class 0 under torch's order; the label's NaN never counts under wrong.
  const std::vector<float> all_nan(7, nan);
  EXPECT_EQ(row_hits(all_nan, 0, T), P(true, true));
  EXPECT_EQ(row_hits(all_nan, 4, T), P(false, true));
  EXPECT_EQ(row_hits(all_nan, 5, T), P(false, false));
  EXPECT_EQ(row_hits(all_nan, 0, W), P(false, false));
  EXPECT_EQ(row_hits(all_nan, 4, W), P(false, false));
  // A NaN label logit is preceded only by the NaNs at lower indices.
  EXPECT_EQ(row_hits({9, nan, 0, 0, 0, 0}, 1, T), P(true, true));
  EXPECT_EQ(row_hits({9, nan, 0, 0, 0, 0}, 1, W), P(false, false));
  EXPECT_EQ(row_hits({nan, 1, nan, nan}, 3, T), P(false, true));
  EXPECT_EQ(row_hits({nan, 1, nan, inf}, 2, T), P(false, true));
}

TEST(TopkCorrect, CountsRowsWithNonFiniteLogits) {
  const float nan = std::nanf(""), inf = INFINITY;
  const std::vector<float> z = {0, 1, 2, nan, 0, 0, 0, -inf, 0, 0, 0, inf, 1e38f, -1e38f, 3.4e38f, 0};
  const std::vector<std::int32_t> labels = {2, 0, 0, 1};
  for (const NanLogits r : {NanLogits::as_torch, NanLogits::wrong}) {
    std::int64_t t1 = -1, t5 = -1, nf = -1;
    topk_correct(4, 4, z.data(), labels.data(), &t1, &t5, r, &nf);
    EXPECT_EQ(nf, 3);  // rows 0-2; row 3 holds only finite numbers, near the largest float
    EXPECT_EQ(t1, 1);
    EXPECT_EQ(t5, 4);
  }
  std::int64_t t1 = -1, t5 = -1;
  topk_correct(4, 4, z.data(), labels.data(), &t1, &t5);  // the count is optional
  EXPECT_EQ(t1, 1);
}

TEST(TopkCorrect, MatchesSortingOnRandomRows) {
  const int n = 300, k = 12;
  // Coarse values so ties are common; NaNs and infinities, and some rows of NaNs.
  std::vector<float> z = ref::random_floats(static_cast<std::size_t>(n) * k, 5, 0.0f, 4.0f);
  for (std::size_t i = 0; i < z.size(); ++i)
    z[i] = i % 97 == 0 || (i / k) % 17 == 3 ? std::nanf("") : i % 89 == 0 ? INFINITY : i % 83 == 0 ? -INFINITY
                                                                                               : std::floor(z[i]);
  std::vector<std::int32_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = (i * 5 + 1) % k;
  for (const NanLogits r : {NanLogits::as_torch, NanLogits::wrong}) {
    std::int64_t t1, t5, nf, w1, w5, wn;
    topk_correct(n, k, z.data(), labels.data(), &t1, &t5, r, &nf);
    naive_topk(n, k, z, labels, r, &w1, &w5, &wn);
    EXPECT_EQ(t1, w1);
    EXPECT_EQ(t5, w5);
    EXPECT_EQ(nf, wn);
    EXPECT_GT(w1, 0);
    EXPECT_LT(w5, n);
    EXPECT_GT(wn, n / 17);
  }
}

TEST(TopkCorrect, RejectsLabelsOutOfRange) {
  const float z[2] = {0, 1};
  const std::int32_t bad[1] = {2};
  std::int64_t t1, t5;
  EXPECT_THROW(topk_correct(1, 2, z, bad, &t1, &t5), Error);
}

}  // namespace
}  // namespace safnet::cpu
