// host/cpu/gemm: the own GEMM (used when built without BLAS) and sgemm (BLAS or the own GEMM)
// against a naive float64 loop, for every transpose combination, ragged sizes that do not divide
// the blocks, padded leading dimensions, alpha and beta. Bound: the standard forward error of a
// float dot product of length k, |error| <= gamma_k * sum |alpha a b| with gamma_k = k u / (1 - k u),
// u = 2^-24, plus the rounding of beta * c and of the final sum (2 u |result|).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "host/cpu/gemm.h"

namespace safnet::cpu {
namespace {

using Gemm = void (*)(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);

void check(Gemm gemm, bool ta, bool tb, int m, int n, int k, float alpha, float beta, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
  std::vector<float> a(static_cast<std::size_t>(ta ? k : m) * lda), b(static_cast<std::size_t>(tb ? n : k) * ldb),
      c(static_cast<std::size_t>(m) * ldc);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  for (auto& x : c) x = u(rng);
  std::vector<float> got = c;
  gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, got.data(), ldc);
  const double unit = std::ldexp(1.0, -24), gamma = k * unit / (1 - k * unit);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double sum = 0, abs_sum = 0;
      for (int p = 0; p < k; ++p) {
        const double av = ta ? a[static_cast<std::size_t>(p) * lda + i] : a[static_cast<std::size_t>(i) * lda + p];
        const double bv = tb ? b[static_cast<std::size_t>(j) * ldb + p] : b[static_cast<std::size_t>(p) * ldb + j];
        sum += alpha * av * bv;
        abs_sum += std::fabs(alpha * av * bv);
      }
      const double cv = c[static_cast<std::size_t>(i) * ldc + j];
      const double want = sum + (beta == 0.0f ? 0.0 : beta * cv);
      const double bound = gamma * abs_sum + 2 * unit * (std::fabs(want) + std::fabs(beta * cv)) + 1e-30;
      ASSERT_NEAR(got[static_cast<std::size_t>(i) * ldc + j], want, bound)
          << "ta=" << ta << " tb=" << tb << " m=" << m << " n=" << n << " k=" << k << " at (" << i << ", " << j << ")";
    }
  // Padding between rows of C is never written.
  for (int i = 0; i < m; ++i)
    for (int j = n; j < ldc; ++j)
      ASSERT_EQ(got[static_cast<std::size_t>(i) * ldc + j], c[static_cast<std::size_t>(i) * ldc + j]);
}

void check_all(Gemm gemm) {
  unsigned seed = 1;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (auto [m, n, k] : {std::tuple{1, 1, 1}, {7, 13, 5}, {16, 600, 131}, {33, 515, 300}, {3, 1030, 257}})
        for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {1.0f, 1.0f}, {-0.5f, 0.25f}}) check(gemm, ta, tb, m, n, k, alpha, beta, seed++);
}

TEST(Gemm, OwnGemmMatchesTheNaiveLoop) { check_all(&gemm_fallback); }

TEST(Gemm, SgemmMatchesTheNaiveLoop) { check_all(&sgemm); }

TEST(Gemm, BetaZeroOverwritesNanInC) {
  const float a[2] = {1, 2}, b[2] = {3, 4};
  float c[1] = {std::numeric_limits<float>::quiet_NaN()};
  gemm_fallback(false, false, 1, 1, 2, 1.0f, a, 2, b, 1, 0.0f, c, 1);
  EXPECT_EQ(c[0], 11.0f);
}

TEST(Gemm, InfinityTimesZeroGivesNanAsInBlas) {
  // A flipped weight can read as inf; a zero activation times it is NaN, not silently 0.
  const float a[1] = {0.0f}, b[1] = {std::numeric_limits<float>::infinity()};
  float c[1] = {0};
  gemm_fallback(false, false, 1, 1, 1, 1.0f, a, 1, b, 1, 0.0f, c, 1);
  EXPECT_TRUE(std::isnan(c[0]));
}

}  // namespace
}  // namespace safnet::cpu
