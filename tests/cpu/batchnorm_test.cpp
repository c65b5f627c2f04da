// Batch-norm kernels against the naive loop (forward) and float64 central differences (backward).
#include <gtest/gtest.h>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"

namespace safnet::cpu {
namespace {

using ref::Vec;

// Batch 1 with spatial extent, ragged planes, hw = 1 (a BN after a linear layer).
const BnGeom kGeoms[] = {{1, 2, 7}, {3, 4, 5}, {6, 3, 1}, {2, 1, 9}};

struct Case {
  BnGeom g;
  std::vector<float> x, gamma, beta, dy;
};

Case make_case(const BnGeom& g, std::uint32_t seed) {
  const std::size_t size = static_cast<std::size_t>(g.n) * g.c * g.hw;
  // An offset mean, as real activations have, so a one-pass variance would lose digits.
  return {g, ref::random_floats(size, seed, 2.0f, 5.0f), ref::random_floats(g.c, seed + 1, 0.5f, 1.5f),
          ref::random_floats(g.c, seed + 2), ref::random_floats(size, seed + 3)};
}

TEST(BatchNorm, TrainForwardMatchesNaiveLoop) {
  const float eps = 1e-3f, momentum = 0.1f;
  std::uint32_t seed = 1;
  for (const BnGeom& g : kGeoms) {
    SCOPED_TRACE(detail::concat(g.n, "x", g.c, "x", g.hw));
    const Case c = make_case(g, seed += 4);
    std::vector<float> y(c.x.size(), 1e30f), mean(g.c), invstd(g.c);
    std::vector<float> rmean = ref::random_floats(g.c, 7), rvar = ref::random_floats(g.c, 8, 0.5f, 2.0f);
    const std::vector<float> rmean0 = rmean, rvar0 = rvar;
    batchnorm_forward_train(g, c.x.data(), c.gamma.data(), c.beta.data(), eps, momentum, y.data(), mean.data(),
                            invstd.data(), rmean.data(), rvar.data());
    Vec mu(g.c), var(g.c);
    const Vec want = ref::batchnorm_train(g, ref::to_double(c.x), ref::to_double(c.gamma), ref::to_double(c.beta),
                                          static_cast<double>(eps), &mu, &var);
    const double count = static_cast<double>(g.n) * g.hw;
    Vec want_invstd(g.c), want_rmean(g.c), want_rvar(g.c), tol_stat(g.c), tol_y(y.size());
    for (int ch = 0; ch < g.c; ++ch) {
      want_invstd[ch] = 1.0 / std::sqrt(var[ch] + eps);
      want_rmean[ch] = (1 - momentum) * rmean0[ch] + momentum * mu[ch];
      want_rvar[ch] = (1 - momentum) * rvar0[ch] + momentum * var[ch] * count / (count - 1);
      // Sums of hw f32 terms per plane (magnitude <= 5 hw) carried in float64 across planes:
      // the mean is off by at most gamma_hw * 5; the centred squares by a few u relative.
      const double mean_err = ref::f32_sum_bound(g.hw, 5.0);
      tol_stat[ch] = mean_err;
      for (int n = 0; n < g.n; ++n)
        for (int i = 0; i < g.hw; ++i) {
          const std::size_t at = (static_cast<std::size_t>(n) * g.c + ch) * g.hw + i;
          const double xhat = std::fabs(c.x[at] - mu[ch]) * want_invstd[ch];
          // y = (x - mean) (gamma invstd) + beta: five roundings, plus the mean's error and the
          // variance's (relative gamma_hw + a few u, halved by the square root) carried through.
          tol_y[at] = (8 * ref::kU32 + ref::f32_sum_bound(g.hw + 4, 1.0)) * (xhat * std::fabs(c.gamma[ch]) +
                      std::fabs(c.beta[ch])) + mean_err * want_invstd[ch] * std::fabs(c.gamma[ch]);
        }
    }
    ref::expect_close(y, want, tol_y, "y");
    ref::expect_close(mean, mu, tol_stat, "mean");
    Vec tol_inv(g.c);
    for (int ch = 0; ch < g.c; ++ch) tol_inv[ch] = ref::f32_sum_bound(g.hw + 4, 1.0) * want_invstd[ch];
    ref::expect_close(invstd, want_invstd, tol_inv, "invstd");
    ref::expect_close(rmean, want_rmean, Vec(g.c, 8 * ref::kU32 * 5 + tol_stat[0]), "running_mean");
    ref::expect_close(rvar, want_rvar, Vec(g.c, ref::f32_sum_bound(g.hw + 8, 4.0)), "running_var");
  }
}

TEST(BatchNorm, TrainForwardWithoutRunningStats) {
  const BnGeom g{2, 3, 4};
  const Case c = make_case(g, 40);
  std::vector<float> y1(c.x.size()), y2(c.x.size()), mean(g.c), invstd(g.c), rm(g.c, 0.0f), rv(g.c, 1.0f);
  batchnorm_forward_train(g, c.x.data(), c.gamma.data(), c.beta.data(), 1e-5f, 0.1f, y1.data(), mean.data(),
                          invstd.data(), rm.data(), rv.data());
  batchnorm_forward_train(g, c.x.data(), c.gamma.data(), c.beta.data(), 1e-5f, 0.1f, y2.data(), mean.data(),
                          invstd.data(), nullptr, nullptr);
  EXPECT_EQ(y1, y2);
}

TEST(BatchNorm, EvalForwardMatchesNaiveLoop) {
  const BnGeom g{3, 4, 5};
  const Case c = make_case(g, 60);
  const auto rmean = ref::random_floats(g.c, 61, 2.0f, 5.0f), rvar = ref::random_floats(g.c, 62, 0.5f, 2.0f);
  const float eps = 1e-5f;
  std::vector<float> y(c.x.size(), 1e30f);
  batchnorm_forward_eval(g, c.x.data(), c.gamma.data(), c.beta.data(), rmean.data(), rvar.data(), eps, y.data());
  Vec want(y.size()), tol(y.size());
  for (std::size_t at = 0; at < y.size(); ++at) {
    const int ch = static_cast<int>(at / g.hw % g.c);
    const double xhat = (c.x[at] - static_cast<double>(rmean[ch])) / std::sqrt(static_cast<double>(rvar[ch]) + eps);
    want[at] = xhat * c.gamma[ch] + c.beta[ch];
    // Five roundings on the scaled term (difference, product, invstd, scale) and one on the sum.
    tol[at] = 8 * ref::kU32 * (std::fabs(xhat * c.gamma[ch]) + std::fabs(c.beta[ch]));
  }
  ref::expect_close(y, want, tol, "y");
}

// L = sum(dy * bn(x; gamma, beta)) differentiated in float64 with h = 1e-5: the truncation error
// h^2 |L'''| / 6 is far below the f32 errors for these O(1) inputs.
TEST(BatchNorm, BackwardMatchesFiniteDifferences) {
  const double eps = 1e-3;
  std::uint32_t seed = 80;
  for (const BnGeom& g : kGeoms) {
    SCOPED_TRACE(detail::concat(g.n, "x", g.c, "x", g.hw));
    const Case c = make_case(g, seed += 4);
    std::vector<float> y(c.x.size()), mean(g.c), invstd(g.c);
    batchnorm_forward_train(g, c.x.data(), c.gamma.data(), c.beta.data(), static_cast<float>(eps), 0.1f, y.data(),
                            mean.data(), invstd.data(), nullptr, nullptr);
    std::vector<float> dx(c.x.size(), 1e30f), dgamma(g.c, 1e30f), dbeta(g.c, 1e30f);
    batchnorm_backward(g, c.x.data(), c.dy.data(), c.gamma.data(), mean.data(), invstd.data(), dx.data(),
                       dgamma.data(), dbeta.data());

    const Vec x = ref::to_double(c.x), gamma = ref::to_double(c.gamma), beta = ref::to_double(c.beta);
    const Vec dy = ref::to_double(c.dy);
    auto loss = [&](const Vec& xv, const Vec& gv, const Vec& bv) {
      return ref::dot(dy, ref::batchnorm_train(g, xv, gv, bv, eps));
    };
    const double h = 1e-5;
    const Vec gx = ref::fd_gradient([&](const Vec& v) { return loss(v, gamma, beta); }, x, h);
    const Vec gg = ref::fd_gradient([&](const Vec& v) { return loss(x, v, beta); }, gamma, h);
    const Vec gb = ref::fd_gradient([&](const Vec& v) { return loss(x, gamma, v); }, beta, h);
    // The reductions sum M = n hw terms of size |dy| (and |dy xhat|, xhat <= sqrt(M)) in f32
    // within planes: gamma_M relative to the sums of magnitudes, which bound every term below.
    const long m = static_cast<long>(g.n) * g.hw;
    const double sum_bound = ref::f32_sum_bound(m + 8, 1.0);
    Vec tx(x.size()), tg(g.c), tb(g.c);
    for (int ch = 0; ch < g.c; ++ch) {
      double sdy = 0.0, sdyx = 0.0;
      for (int n = 0; n < g.n; ++n)
        for (int i = 0; i < g.hw; ++i) {
          const std::size_t at = (static_cast<std::size_t>(n) * g.c + ch) * g.hw + i;
          sdy += std::fabs(dy[at]);
          sdyx += std::fabs(dy[at] * (x[at] - mean[ch]) * invstd[ch]);
        }
      tb[ch] = sum_bound * sdy + 1e-9;
      tg[ch] = sum_bound * sdyx + 1e-9;
      const double k = std::fabs(gamma[ch]) * invstd[ch];
      for (int n = 0; n < g.n; ++n)
        for (int i = 0; i < g.hw; ++i) {
          const std::size_t at = (static_cast<std::size_t>(n) * g.c + ch) * g.hw + i;
          const double xhat = std::fabs(x[at] - mean[ch]) * invstd[ch];
          tx[at] = k * (sum_bound * (std::fabs(dy[at]) + (sdy + sdyx * xhat) / static_cast<double>(m))) + 1e-9;
        }
    }
    ref::expect_close(dx, gx, tx, "dx");
    ref::expect_close(dgamma, gg, tg, "dgamma");
    ref::expect_close(dbeta, gb, tb, "dbeta");
  }
}

TEST(BatchNorm, RejectsBadInput) {
  std::vector<float> buf(8), stat(2);
  EXPECT_THROW(batchnorm_forward_train({1, 2, 1}, buf.data(), buf.data(), buf.data(), 1e-5f, 0.1f, buf.data(),
                                       stat.data(), stat.data(), nullptr, nullptr),
               Error);  // one value per channel has no variance
  EXPECT_THROW(batchnorm_forward_eval({1, 0, 2}, buf.data(), buf.data(), buf.data(), buf.data(), buf.data(), 1e-5f,
                                      buf.data()),
               Error);
}

}  // namespace
}  // namespace safnet::cpu
