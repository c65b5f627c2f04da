// Global average pooling and max pooling against naive loops and float64 central differences.
#include <gtest/gtest.h>

#include <cmath>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"

namespace safnet::cpu {
namespace {

using ref::Vec;

Vec avgpool(int n, int c, int hw, const Vec& x) {
  Vec y(static_cast<std::size_t>(n) * c, 0.0);
  for (std::size_t p = 0; p < y.size(); ++p) {
    for (int i = 0; i < hw; ++i) y[p] += x[p * hw + i];
    y[p] /= hw;
  }
  return y;
}

TEST(GlobalAvgPool, ForwardAndBackward) {
  const int n = 3, c = 5, hw = 7;
  const auto x = ref::random_floats(static_cast<std::size_t>(n) * c * hw, 1);
  const auto dy = ref::random_floats(static_cast<std::size_t>(n) * c, 2);
  std::vector<float> y(dy.size(), 1e30f), dx(x.size(), 1e30f);
  global_avgpool_forward(n, c, hw, x.data(), y.data());
  global_avgpool_backward(n, c, hw, dy.data(), dx.data());
  // hw terms of magnitude <= 1, then the scaling by 1/hw (two more roundings).
  ref::expect_close(y, avgpool(n, c, hw, ref::to_double(x)), ref::f32_sum_bound(hw + 2, 1.0), "y");
  const Vec dyd = ref::to_double(dy);
  const Vec want =
      ref::fd_gradient([&](const Vec& v) { return ref::dot(dyd, avgpool(n, c, hw, v)); }, ref::to_double(x), 0.5);
  ref::expect_close(dx, want, 2 * ref::kU32, "dx");
}

// Overlapping windows (k 3, stride 2, pad 1), ragged sizes, non-overlapping 2x2, and a window
// larger than the stride without padding.
const PoolGeom kPools[] = {{2, 3, 5, 6, 3, 2, 1}, {1, 2, 4, 4, 2, 2, 0}, {2, 1, 7, 5, 3, 1, 0}, {1, 1, 1, 1, 1, 1, 0}};

TEST(MaxPool, ForwardMatchesNaiveLoopAndBackwardMatchesFiniteDifferences) {
  std::uint32_t seed = 10;
  for (const PoolGeom& g : kPools) {
    SCOPED_TRACE(detail::concat(g.n, " ", g.c, " ", g.h, "x", g.w, " k", g.k, " s", g.stride, " p", g.pad));
    const auto x = ref::random_floats(static_cast<std::size_t>(g.n) * g.c * g.h * g.w, seed++);
    const std::size_t ysize = static_cast<std::size_t>(g.n) * g.c * g.oh() * g.ow();
    const auto dy = ref::random_floats(ysize, seed++);
    std::vector<float> y(ysize, 1e30f), dx(x.size(), 1e30f);
    std::vector<std::int32_t> argmax(ysize, -7), want_argmax;
    maxpool_forward(g, x.data(), y.data(), argmax.data());
    maxpool_backward(g, dy.data(), argmax.data(), dx.data());
    ref::expect_close(y, ref::maxpool(g, ref::to_double(x), &want_argmax), 0.0, "y");
    EXPECT_EQ(argmax, want_argmax);
    // Piecewise linear; random inputs are at least ~1e-7 apart, far more than the step h.
    const Vec dyd = ref::to_double(dy);
    const Vec want =
        ref::fd_gradient([&](const Vec& v) { return ref::dot(dyd, ref::maxpool(g, v)); }, ref::to_double(x), 1e-9);
    // Overlapping windows add up to k^2 gradients into one input pixel.
    ref::expect_close(dx, want, ref::f32_sum_bound(g.k * g.k, 1.0) + 1e-6, "dx");
  }
}

TEST(MaxPool, NanWinsTheWindow) {
  const PoolGeom g{1, 1, 2, 2, 2, 2, 0};
  const float x[4] = {1.0f, std::nanf(""), 3.0f, 2.0f};
  float y = 0.0f;
  std::int32_t at = -1;
  maxpool_forward(g, x, &y, &at);
  EXPECT_TRUE(std::isnan(y));
  EXPECT_EQ(at, 1);
}

TEST(MaxPool, RejectsBadInput) {
  std::vector<float> buf(16);
  std::vector<std::int32_t> idx(16, 0);
  EXPECT_THROW(maxpool_forward({1, 1, 4, 4, 2, 2, 2}, buf.data(), buf.data(), idx.data()), Error);  // pad > k/2
  idx[0] = 99;
  EXPECT_THROW(maxpool_backward({1, 1, 4, 4, 2, 2, 0}, buf.data(), idx.data(), buf.data()), Error);
}

}  // namespace
}  // namespace safnet::cpu
