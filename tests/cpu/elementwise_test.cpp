// ReLU, addition and the option-A shortcut against naive loops and float64 central differences.
#include <gtest/gtest.h>

#include <cmath>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"

namespace safnet::cpu {
namespace {

using ref::Vec;

TEST(Relu, ForwardAndBackward) {
  // Odd length, larger than one thread's share, so the vector tails and the split are exercised.
  const std::size_t n = 70001;
  const auto x = ref::random_floats(n, 1), dy = ref::random_floats(n, 2);
  std::vector<float> y(n, 1e30f), dx(n, 1e30f);
  relu_forward(static_cast<std::int64_t>(n), x.data(), y.data());
  relu_backward(static_cast<std::int64_t>(n), y.data(), dy.data(), dx.data());
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(y[i], x[i] > 0 ? x[i] : 0.0f) << i;
    ASSERT_EQ(dx[i], x[i] > 0 ? dy[i] : 0.0f) << i;
  }
  const float nan = std::nanf("");
  float yn = 0.0f;
  relu_forward(1, &nan, &yn);
  EXPECT_TRUE(std::isnan(yn));
}

TEST(Relu, BackwardMatchesFiniteDifferences) {
  std::vector<float> xf = ref::random_floats(40, 3);
  for (float& v : xf) v += v > 0 ? 0.1f : -0.1f;  // away from the kink at 0
  const auto dyf = ref::random_floats(40, 4);
  std::vector<float> y(40), dx(40);
  relu_forward(40, xf.data(), y.data());
  relu_backward(40, y.data(), dyf.data(), dx.data());
  const Vec dy = ref::to_double(dyf);
  const Vec want = ref::fd_gradient(
      [&](const Vec& x) {
        double s = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) s += dy[i] * std::max(x[i], 0.0);
        return s;
      },
      ref::to_double(xf), 1e-3);
  ref::expect_close(dx, want, 1e-12, "dx");  // exact: dx is a copy of dy or 0
}

TEST(Add, MatchesSum) {
  const std::size_t n = 33333;
  const auto a = ref::random_floats(n, 5), b = ref::random_floats(n, 6);
  std::vector<float> y(n);
  add_forward(static_cast<std::int64_t>(n), a.data(), b.data(), y.data());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(y[i], a[i] + b[i]) << i;
}

struct ShortcutCase {
  int n, c, h, w, stride, k;
};
// Identity, the ResNet downsampling (stride 2, doubled channels), odd sizes (ceil), K = C + 4.
const ShortcutCase kShortcuts[] = {{2, 3, 4, 4, 1, 3}, {2, 2, 4, 4, 2, 4}, {1, 3, 5, 3, 2, 7}, {3, 1, 1, 2, 2, 1}};

TEST(ShortcutA, ForwardMatchesNaiveLoopAndBackwardMatchesFiniteDifferences) {
  std::uint32_t seed = 20;
  for (const ShortcutCase& s : kShortcuts) {
    SCOPED_TRACE(detail::concat(s.n, " ", s.c, " ", s.h, "x", s.w, " stride ", s.stride, " k ", s.k));
    const int oh = (s.h + s.stride - 1) / s.stride, ow = (s.w + s.stride - 1) / s.stride;
    const auto x = ref::random_floats(static_cast<std::size_t>(s.n) * s.c * s.h * s.w, seed++);
    const auto dy = ref::random_floats(static_cast<std::size_t>(s.n) * s.k * oh * ow, seed++);
    std::vector<float> y(dy.size(), 1e30f), dx(x.size(), 1e30f);
    shortcut_a_forward(s.n, s.c, s.h, s.w, s.stride, s.k, x.data(), y.data());
    shortcut_a_backward(s.n, s.c, s.h, s.w, s.stride, s.k, dy.data(), dx.data());
    ref::expect_close(y, ref::shortcut_a(s.n, s.c, s.h, s.w, s.stride, s.k, ref::to_double(x)), 0.0, "y");
    const Vec dyd = ref::to_double(dy);
    const Vec want = ref::fd_gradient(
        [&](const Vec& v) { return ref::dot(dyd, ref::shortcut_a(s.n, s.c, s.h, s.w, s.stride, s.k, v)); },
        ref::to_double(x), 0.5);
    ref::expect_close(dx, want, 1e-12, "dx");  // a copy: exact up to the float64 differences
  }
}

TEST(ShortcutA, RejectsOddChannelPadding) {
  std::vector<float> buf(64);
  EXPECT_THROW(shortcut_a_forward(1, 2, 2, 2, 1, 3, buf.data(), buf.data()), Error);
  EXPECT_THROW(shortcut_a_backward(1, 4, 2, 2, 1, 2, buf.data(), buf.data()), Error);
}

}  // namespace
}  // namespace safnet::cpu
