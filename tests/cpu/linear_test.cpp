// Linear kernels against the naive loop (forward) and float64 central differences (backward).
#include <gtest/gtest.h>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"

namespace safnet::cpu {
namespace {

using ref::Vec;

struct Dims {
  int n, in, out;
};
// Batch 1, ragged sizes, and batches / outputs spanning more than one row block.
const Dims kDims[] = {{1, 1, 1}, {1, 7, 3}, {5, 9, 4}, {37, 6, 5}, {3, 4, 40}};

TEST(Linear, ForwardMatchesNaiveLoop) {
  std::uint32_t seed = 10;
  for (const Dims& d : kDims) {
    for (bool bias : {false, true}) {
      SCOPED_TRACE(detail::concat(d.n, "x", d.in, "->", d.out, bias ? " bias" : ""));
      const auto x = ref::random_floats(static_cast<std::size_t>(d.n) * d.in, seed++);
      const auto w = ref::random_floats(static_cast<std::size_t>(d.out) * d.in, seed++);
      const auto b = ref::random_floats(static_cast<std::size_t>(d.out), seed++);
      std::vector<float> y(static_cast<std::size_t>(d.n) * d.out, 1e30f);
      linear_forward(d.n, d.in, d.out, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
      const Vec bd = ref::to_double(b), abd = ref::abs_of(bd);
      const Vec want = ref::linear(d.n, d.in, d.out, ref::to_double(x), ref::to_double(w), bias ? &bd : nullptr);
      const Vec mag = ref::linear(d.n, d.in, d.out, ref::abs_of(ref::to_double(x)), ref::abs_of(ref::to_double(w)),
                                  bias ? &abd : nullptr);
      Vec tol(mag.size());
      for (std::size_t i = 0; i < mag.size(); ++i) tol[i] = ref::f32_sum_bound(d.in + 1, mag[i]);
      ref::expect_close(y, want, tol, "y");
    }
  }
}

TEST(Linear, BackwardMatchesFiniteDifferences) {
  std::uint32_t seed = 50;
  for (const Dims& d : kDims) {
    SCOPED_TRACE(detail::concat(d.n, "x", d.in, "->", d.out));
    const auto xf = ref::random_floats(static_cast<std::size_t>(d.n) * d.in, seed++);
    const auto wf = ref::random_floats(static_cast<std::size_t>(d.out) * d.in, seed++);
    const auto bf = ref::random_floats(static_cast<std::size_t>(d.out), seed++);
    const auto dyf = ref::random_floats(static_cast<std::size_t>(d.n) * d.out, seed++);
    const Vec x = ref::to_double(xf), w = ref::to_double(wf), b = ref::to_double(bf), dy = ref::to_double(dyf);
    const Vec ax = ref::abs_of(x), aw = ref::abs_of(w), ab = ref::abs_of(b), ady = ref::abs_of(dy);
    // L = sum(dy * (x w^T + b)) is linear in each of x, w, b: the differences are exact.
    auto loss = [&](const Vec& xv, const Vec& wv, const Vec& bv, const Vec& g) {
      return ref::dot(g, ref::linear(d.n, d.in, d.out, xv, wv, &bv));
    };
    std::vector<float> dx(xf.size(), 1e30f), dw(wf.size(), 1e30f), db(bf.size(), 1e30f), dw2(wf.size(), 1e30f);
    linear_backward_data(d.n, d.in, d.out, dyf.data(), wf.data(), dx.data());
    linear_backward_weight(d.n, d.in, d.out, xf.data(), dyf.data(), dw.data(), db.data());
    linear_backward_weight(d.n, d.in, d.out, xf.data(), dyf.data(), dw2.data(), nullptr);

    const Vec gx = ref::fd_gradient([&](const Vec& v) { return loss(v, w, b, dy); }, x, 0.5);
    const Vec mx = ref::fd_gradient([&](const Vec& v) { return loss(v, aw, ab, ady); }, x, 0.5);
    const Vec gw = ref::fd_gradient([&](const Vec& v) { return loss(x, v, b, dy); }, w, 0.5);
    const Vec mw = ref::fd_gradient([&](const Vec& v) { return loss(ax, v, ab, ady); }, w, 0.5);
    const Vec gb = ref::fd_gradient([&](const Vec& v) { return loss(x, w, v, dy); }, b, 0.5);
    const Vec mb = ref::fd_gradient([&](const Vec& v) { return loss(ax, aw, v, ady); }, b, 0.5);
    auto tol = [](const Vec& mag, long terms) {
      Vec t(mag.size());
      for (std::size_t i = 0; i < mag.size(); ++i) t[i] = ref::f32_sum_bound(terms, mag[i]) + 1e-12;
      return t;
    };
    ref::expect_close(dx, gx, tol(mx, d.out), "dx");
    ref::expect_close(dw, gw, tol(mw, d.n), "dw");
    ref::expect_close(dw2, gw, tol(mw, d.n), "dw without db");
    ref::expect_close(db, gb, tol(mb, d.n), "db");
  }
}

TEST(Linear, RejectsBadDimensions) {
  std::vector<float> buf(8);
  EXPECT_THROW(linear_forward(0, 2, 2, buf.data(), buf.data(), nullptr, buf.data()), Error);
  EXPECT_THROW(linear_backward_data(1, -1, 2, buf.data(), buf.data(), buf.data()), Error);
  EXPECT_THROW(linear_backward_weight(1, 2, 0, buf.data(), buf.data(), buf.data(), nullptr), Error);
}

}  // namespace
}  // namespace safnet::cpu
