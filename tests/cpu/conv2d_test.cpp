// Conv2d kernels against the naive loop (forward) and float64 central differences (backward).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "host/check.h"
#include "host/cpu/cpu_features.h"
#include "host/cpu/im2col.h"
#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"

namespace safnet::cpu {
namespace {

using ref::Vec;

// Ragged sizes, stride 1 and 2, padding 0 and 1, 1x1 (direct and strided) and 3x3 kernels, a
// non-square kernel, batch 1, and batches spanning several reduction chunks.
const ConvGeom kGeoms[] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 0}, {2, 3, 5, 7, 4, 3, 3, 1, 1}, {2, 3, 5, 7, 4, 3, 3, 2, 1},
    {1, 2, 6, 5, 3, 3, 3, 2, 0}, {3, 5, 4, 4, 6, 1, 1, 1, 0}, {2, 4, 7, 6, 3, 1, 1, 2, 0},
    {2, 3, 4, 5, 2, 3, 3, 1, 0}, {9, 2, 3, 3, 3, 3, 3, 1, 1}, {2, 2, 6, 5, 3, 2, 3, 1, 1},
    {1, 2, 2, 2, 2, 3, 3, 1, 1},
};

// Shapes for the blocked forward kernel's cases: output rows of 8 and 16 pixels read as whole
// vectors at stride 1 and 2, rows of other widths and stride 3 read by gathers, panels straddling
// output rows, a last panel cut short, channel counts giving tiles of every height 1 to 6 (16
// channels: 5 + 5 + 6), 1080 terms per output, above the kernel's limit, so sgemm runs it, and
// rows so wide that the portable im2col skips its padded copy.
const ConvGeom kPanelGeoms[] = {
    {2, 3, 8, 8, 1, 3, 3, 1, 1},    {2, 3, 8, 8, 2, 3, 3, 1, 1},    {2, 3, 8, 8, 3, 3, 3, 1, 1},
    {2, 3, 8, 8, 4, 3, 3, 1, 1},    {2, 3, 8, 8, 5, 3, 3, 1, 1},    {2, 3, 8, 8, 6, 3, 3, 1, 1},
    {2, 5, 16, 16, 7, 3, 3, 2, 1},  {1, 4, 32, 32, 16, 3, 3, 2, 1}, {1, 4, 16, 16, 13, 3, 3, 1, 1},
    {1, 2, 12, 12, 5, 3, 3, 1, 1},  {1, 2, 9, 10, 3, 3, 3, 3, 1},   {1, 2, 10, 9, 4, 5, 3, 1, 2},
    {2, 8, 14, 14, 6, 3, 3, 1, 1},  {1, 120, 5, 5, 3, 3, 3, 1, 1},  {1, 1, 3, 6000, 2, 3, 3, 1, 1},
};

// Runs a test body with the AVX2 kernels on (where the CPU has them) and with them off, so both
// the blocked kernel and the portable sgemm paths are checked on the same machine.
class Conv2dKernels : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { set_avx2_kernels_enabled(GetParam()); }
  void TearDown() override { set_avx2_kernels_enabled(true); }
};

std::string name(const ConvGeom& g) {
  return detail::concat("n", g.n, " c", g.c, " ", g.h, "x", g.w, " k", g.k, " ", g.r, "x", g.s, " s", g.stride, " p",
                        g.pad);
}

struct Case {
  ConvGeom g;
  std::vector<float> x, w, dy;
  std::size_t ysize() const { return static_cast<std::size_t>(g.n) * g.k * g.oh() * g.ow(); }
};

Case make_case(const ConvGeom& g, std::uint32_t seed) {
  Case c{g, {}, {}, {}};
  c.x = ref::random_floats(static_cast<std::size_t>(g.n) * g.c * g.h * g.w, seed);
  c.w = ref::random_floats(static_cast<std::size_t>(g.k) * g.c * g.r * g.s, seed + 1);
  c.dy = ref::random_floats(c.ysize(), seed + 2);
  return c;
}

void expect_forward_matches_naive_loop(const ConvGeom& g, std::uint32_t seed) {
  SCOPED_TRACE(name(g));
  const Case c = make_case(g, seed);
  std::vector<float> y(c.ysize(), 1e30f);
  conv2d_forward(g, c.x.data(), c.w.data(), y.data());
  const Vec want = ref::conv2d(g, ref::to_double(c.x), ref::to_double(c.w));
  const Vec mag = ref::conv2d(g, ref::abs_of(ref::to_double(c.x)), ref::abs_of(ref::to_double(c.w)));
  Vec tol(mag.size());
  for (std::size_t i = 0; i < mag.size(); ++i) tol[i] = ref::f32_sum_bound(g.c * g.r * g.s, mag[i]);
  ref::expect_close(y, want, tol, "y");
}

TEST_P(Conv2dKernels, ForwardMatchesNaiveLoop) {
  std::uint32_t seed = 1;
  for (const ConvGeom& g : kGeoms) expect_forward_matches_naive_loop(g, seed += 3);
  for (const ConvGeom& g : kPanelGeoms) expect_forward_matches_naive_loop(g, seed += 3);
}

// Each output is one fixed sequence of operations: the same bits whatever the thread count.
TEST_P(Conv2dKernels, ForwardSameForAnyThreadCount) {
  for (const ConvGeom& g : {ConvGeom{7, 16, 8, 8, 16, 3, 3, 1, 1}, ConvGeom{5, 6, 16, 16, 10, 3, 3, 2, 1},
                            ConvGeom{3, 4, 32, 32, 5, 3, 3, 1, 1}}) {
    SCOPED_TRACE(name(g));
    const Case c = make_case(g, 500);
    const int saved = omp_get_max_threads();
    std::vector<float> one(c.ysize()), three(c.ysize());
    omp_set_num_threads(1);
    conv2d_forward(g, c.x.data(), c.w.data(), one.data());
    omp_set_num_threads(3);
    conv2d_forward(g, c.x.data(), c.w.data(), three.data());
    omp_set_num_threads(saved);
    EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0);
  }
}

// The AVX-512 variant of the blocked kernel runs each output's multiply-adds in the AVX2 kernel's
// order: the same bits, with tiles run three at a time (16 and 32 channels: 5 + 5 + 6; 64: 5 + 6 +
// 6, 6 + 6 + 5, 6 + 6 + 6), two at a time (11 channels: 5 + 6; 64: the last 6 + 6), alone by the
// AVX2 kernel (fewer than 10 channels), and a last panel cut short; its terms read from the
// unfolded panel, or straight from the padded image (rows of 32, and of 24, whose second panel
// straddles two rows and is unfolded).
TEST(Conv2d, Avx512KernelGivesTheAvx2KernelsBits) {
  set_avx512_kernels_enabled(true);
  if (!avx512_kernels_enabled()) GTEST_SKIP() << "this CPU has no AVX-512F (or no AVX2)";
  std::vector<ConvGeom> geoms(std::begin(kPanelGeoms), std::end(kPanelGeoms));
  for (const ConvGeom& g : {ConvGeom{2, 16, 10, 10, 16, 3, 3, 1, 1}, ConvGeom{2, 16, 9, 9, 32, 3, 3, 2, 1},
                            ConvGeom{1, 8, 7, 7, 64, 3, 3, 1, 1}, ConvGeom{1, 3, 5, 5, 11, 3, 3, 1, 1},
                            ConvGeom{2, 5, 32, 32, 16, 3, 3, 1, 1}, ConvGeom{2, 6, 8, 8, 20, 3, 3, 1, 1},
                            ConvGeom{1, 4, 6, 24, 12, 3, 3, 1, 1}, ConvGeom{1, 3, 9, 16, 64, 3, 3, 1, 0}})
    geoms.push_back(g);
  std::uint32_t seed = 700;
  for (const ConvGeom& g : geoms) {
    SCOPED_TRACE(name(g));
    const Case c = make_case(g, seed += 3);
    std::vector<float> wide(c.ysize(), 1e30f), narrow(c.ysize(), -1e30f);
    conv2d_forward(g, c.x.data(), c.w.data(), wide.data());
    set_avx512_kernels_enabled(false);
    conv2d_forward(g, c.x.data(), c.w.data(), narrow.data());
    set_avx512_kernels_enabled(true);
    EXPECT_EQ(std::memcmp(wide.data(), narrow.data(), wide.size() * sizeof(float)), 0);
  }
}

// L = sum(dy * conv(x, w)) is bilinear, so its central differences are exact up to float64
// rounding; the f32 gradients may differ from them only by the f32 summation error, bounded by the
// same gradient taken with absolute values.
TEST_P(Conv2dKernels, BackwardDataMatchesFiniteDifferences) {
  std::uint32_t seed = 100;
  for (const ConvGeom& g : kGeoms) {
    SCOPED_TRACE(name(g));
    const Case c = make_case(g, seed += 3);
    std::vector<float> dx(c.x.size(), 1e30f);
    conv2d_backward_data(g, c.dy.data(), c.w.data(), dx.data());
    const Vec w = ref::to_double(c.w), dy = ref::to_double(c.dy), aw = ref::abs_of(w), ady = ref::abs_of(dy);
    const Vec want = ref::fd_gradient([&](const Vec& x) { return ref::dot(dy, ref::conv2d(g, x, w)); },
                                      ref::to_double(c.x), 0.5);
    const Vec mag = ref::fd_gradient([&](const Vec& x) { return ref::dot(ady, ref::conv2d(g, x, aw)); },
                                     ref::to_double(c.x), 0.5);
    Vec tol(mag.size());
    for (std::size_t i = 0; i < mag.size(); ++i) tol[i] = ref::f32_sum_bound(g.k * g.r * g.s, mag[i]) + 1e-12;
    ref::expect_close(dx, want, tol, "dx");
  }
}

// The AVX-512 weight-gradient kernel (channels in multiples of 16, output channels in groups of
// tiles: pairs, triples, 2 + 2) against the float64 sum it computes, over batches spanning one to
// three reduction chunks, stride 2, ragged and 1x1 shapes; and the same bits on any thread count.
TEST(Conv2d, BackwardWeightByTheAvx512KernelMatchesTheExactSum) {
  set_avx512_kernels_enabled(true);
  if (!avx512_kernels_enabled()) GTEST_SKIP() << "this CPU has no AVX-512F (or no AVX2)";
  std::uint32_t seed = 900;
  for (const ConvGeom& g : {ConvGeom{5, 16, 4, 4, 10, 3, 3, 1, 1}, ConvGeom{2, 32, 7, 5, 16, 3, 3, 2, 1},
                            ConvGeom{1, 16, 6, 6, 64, 3, 3, 1, 0}, ConvGeom{3, 16, 5, 5, 20, 1, 1, 1, 0},
                            ConvGeom{9, 16, 3, 3, 12, 3, 3, 1, 1}}) {
    SCOPED_TRACE(name(g));
    const Case c = make_case(g, seed += 3);
    std::vector<float> dw(c.w.size(), 1e30f);
    conv2d_backward_weight(g, c.x.data(), c.dy.data(), dw.data());
    Vec want(c.w.size(), 0.0), mag(c.w.size(), 0.0);
    for (int n = 0; n < g.n; ++n)
      for (int k = 0; k < g.k; ++k)
        for (int ch = 0; ch < g.c; ++ch)
          for (int r = 0; r < g.r; ++r)
            for (int s = 0; s < g.s; ++s)
              for (int oy = 0; oy < g.oh(); ++oy)
                for (int ox = 0; ox < g.ow(); ++ox) {
                  const int iy = oy * g.stride - g.pad + r, ix = ox * g.stride - g.pad + s;
                  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                  const double a = c.dy[((static_cast<std::size_t>(n) * g.k + k) * g.oh() + oy) * g.ow() + ox];
                  const double b = c.x[((static_cast<std::size_t>(n) * g.c + ch) * g.h + iy) * g.w + ix];
                  const std::size_t i = ((static_cast<std::size_t>(k) * g.c + ch) * g.r + r) * g.s + s;
                  want[i] += a * b;
                  mag[i] += std::abs(a * b);
                }
    Vec tol(mag.size());
    for (std::size_t i = 0; i < mag.size(); ++i)
      tol[i] = ref::f32_sum_bound(static_cast<long>(g.n) * g.oh() * g.ow(), mag[i]) + 1e-12;
    ref::expect_close(dw, want, tol, "dw");
    const int saved = omp_get_max_threads();
    std::vector<float> three(dw.size());
    omp_set_num_threads(3);
    conv2d_backward_weight(g, c.x.data(), c.dy.data(), three.data());
    omp_set_num_threads(saved);
    EXPECT_EQ(std::memcmp(dw.data(), three.data(), dw.size() * sizeof(float)), 0);
  }
}

TEST(Conv2d, BackwardWeightMatchesFiniteDifferences) {
  std::uint32_t seed = 200;
  for (const ConvGeom& g : kGeoms) {
    SCOPED_TRACE(name(g));
    const Case c = make_case(g, seed += 3);
    std::vector<float> dw(c.w.size(), 1e30f);
    conv2d_backward_weight(g, c.x.data(), c.dy.data(), dw.data());
    const Vec x = ref::to_double(c.x), dy = ref::to_double(c.dy), ax = ref::abs_of(x), ady = ref::abs_of(dy);
    const Vec want = ref::fd_gradient([&](const Vec& w) { return ref::dot(dy, ref::conv2d(g, x, w)); },
                                      ref::to_double(c.w), 0.5);
    const Vec mag = ref::fd_gradient([&](const Vec& w) { return ref::dot(ady, ref::conv2d(g, ax, w)); },
                                     ref::to_double(c.w), 0.5);
    Vec tol(mag.size());
    for (std::size_t i = 0; i < mag.size(); ++i)
      tol[i] = ref::f32_sum_bound(static_cast<long>(g.n) * g.oh() * g.ow(), mag[i]) + 1e-12;
    ref::expect_close(dw, want, tol, "dw");
  }
}

// The raw-weight gradient through the weight view, w_eff = tau(raw), for every SAF kind:
// weight_grad_epilogue(conv2d_backward_weight(...)) against central differences of
// L(raw) = sum(dy * conv(x, tau(raw))) in float64.
TEST(Conv2d, SafRawWeightGradientMatchesFiniteDifferences) {
  const ConvGeom g{3, 2, 5, 4, 3, 3, 3, 2, 1};
  const Case c = make_case(g, 300);
  // Raw weights in +-[0.05, 2.5]: through the SAFs' curved part, away from softsign's kink at 0.
  std::vector<float> raw = ref::random_floats(c.w.size(), 301, 0.05f, 2.5f);
  for (std::size_t i = 0; i < raw.size(); i += 2) raw[i] = -raw[i];
  const Vec x = ref::to_double(c.x), dy = ref::to_double(c.dy), ax = ref::abs_of(x), ady = ref::abs_of(dy);
  for (const Saf& saf : ref::all_safs()) {
    SCOPED_TRACE(static_cast<int>(saf.kind));
    std::vector<float> w_eff(raw.size()), grad(raw.size(), 1e30f);
    weight_view_load(saf, DType::f32(), raw.data(), static_cast<std::int64_t>(raw.size()), w_eff.data());
    std::vector<float> y(c.ysize());
    conv2d_forward(g, c.x.data(), w_eff.data(), y.data());  // the forward a training step would run
    conv2d_backward_weight(g, c.x.data(), c.dy.data(), grad.data());
    weight_grad_epilogue(saf, raw.data(), static_cast<std::int64_t>(raw.size()), grad.data());

    auto tau = [&](const Vec& r) {
      Vec w(r.size());
      for (std::size_t i = 0; i < r.size(); ++i) w[i] = ref::saf_value(saf, r[i]);
      return w;
    };
    const double h = 1e-4;
    const Vec want =
        ref::fd_gradient([&](const Vec& r) { return ref::dot(dy, ref::conv2d(g, x, tau(r))); }, ref::to_double(raw), h);
    // dL/dw_eff, and the same sum taken over magnitudes: the scale of the f32 summation error.
    const Vec dweff = ref::fd_gradient([&](const Vec& w) { return ref::dot(dy, ref::conv2d(g, x, w)); },
                                       ref::to_double(raw), 0.5);
    const Vec mag = ref::fd_gradient([&](const Vec& w) { return ref::dot(ady, ref::conv2d(g, ax, w)); },
                                     ref::to_double(raw), 0.5);
    Vec tol(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      const double r = raw[i];
      const double slope = std::fabs((ref::saf_value(saf, r + 1e-7) - ref::saf_value(saf, r - 1e-7)) / 2e-7);
      // The f32 sum error times tau'; tau' itself off by at most 8u absolute (tanhf/atanf are
      // within 2 ulps in glibc, then up to three more roundings; every tau' here is <= 1), plus
      // the product's rounding; plus the h^2 |tau'''| / 6 truncation of the differences
      // (|tau'''| <= 6 for these SAFs).
      tol[i] = ref::f32_sum_bound(static_cast<long>(g.n) * g.oh() * g.ow(), mag[i]) * slope +
               9 * ref::kU32 * std::fabs(dweff[i]) + h * h * mag[i] + 1e-12;
    }
    ref::expect_close(grad, want, tol, "raw grad");
  }
}

// A layer wide enough that each image's im2col is built in several bands of output rows (the
// last one ragged), checked at coordinates spread over every band.
TEST_P(Conv2dKernels, SeveralIm2colBands) {
  for (const ConvGeom& g : {ConvGeom{2, 16, 37, 30, 3, 3, 3, 1, 1}, ConvGeom{2, 16, 37, 30, 3, 3, 3, 2, 1}}) {
    SCOPED_TRACE(name(g));
    const Case c = make_case(g, 400);
    const Vec x = ref::to_double(c.x), w = ref::to_double(c.w), dy = ref::to_double(c.dy);
    const Vec ax = ref::abs_of(x), aw = ref::abs_of(w), ady = ref::abs_of(dy);
    std::vector<float> y(c.ysize()), dx(c.x.size()), dw(c.w.size());
    conv2d_forward(g, c.x.data(), c.w.data(), y.data());
    conv2d_backward_data(g, c.dy.data(), c.w.data(), dx.data());
    conv2d_backward_weight(g, c.x.data(), c.dy.data(), dw.data());
    const Vec mag = ref::conv2d(g, ax, aw);
    Vec tol(mag.size());
    for (std::size_t i = 0; i < mag.size(); ++i) tol[i] = ref::f32_sum_bound(g.c * g.r * g.s, mag[i]);
    ref::expect_close(y, ref::conv2d(g, x, w), tol, "y");

    const auto at_x = ref::spread_indices(x.size(), 23), at_w = ref::spread_indices(w.size(), 23);
    const Vec gx = ref::fd_gradient_at([&](const Vec& v) { return ref::dot(dy, ref::conv2d(g, v, w)); }, x, 0.5, at_x);
    const Vec mx = ref::fd_gradient_at([&](const Vec& v) { return ref::dot(ady, ref::conv2d(g, v, aw)); }, x, 0.5, at_x);
    const Vec gw = ref::fd_gradient_at([&](const Vec& v) { return ref::dot(dy, ref::conv2d(g, x, v)); }, w, 0.5, at_w);
    const Vec mw = ref::fd_gradient_at([&](const Vec& v) { return ref::dot(ady, ref::conv2d(g, ax, v)); }, w, 0.5, at_w);
    std::vector<float> dx_at, dw_at;
    Vec tx, tw;
    for (std::size_t j = 0; j < at_x.size(); ++j) {
      dx_at.push_back(dx[at_x[j]]);
      tx.push_back(ref::f32_sum_bound(g.k * g.r * g.s, mx[j]) + 1e-12);
    }
    for (std::size_t j = 0; j < at_w.size(); ++j) {
      dw_at.push_back(dw[at_w[j]]);
      tw.push_back(ref::f32_sum_bound(static_cast<long>(g.n) * g.oh() * g.ow(), mw[j]) + 1e-12);
    }
    ref::expect_close(dx_at, gx, tx, "dx");
    ref::expect_close(dw_at, gw, tw, "dw");
  }
}

INSTANTIATE_TEST_SUITE_P(Conv2d, Conv2dKernels, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "avx2" : "portable"; });

TEST(Conv2d, RejectsBadGeometry) {
  std::vector<float> buf(64);
  const ConvGeom too_small{1, 1, 2, 2, 1, 5, 5, 1, 1};
  EXPECT_THROW(conv2d_forward(too_small, buf.data(), buf.data(), buf.data()), Error);
  const ConvGeom zero_stride{1, 1, 2, 2, 1, 1, 1, 0, 0};
  EXPECT_THROW(conv2d_backward_data(zero_stride, buf.data(), buf.data(), buf.data()), Error);
  const ConvGeom no_images{0, 1, 2, 2, 1, 1, 1, 1, 0};
  EXPECT_THROW(conv2d_backward_weight(no_images, buf.data(), buf.data(), buf.data()), Error);
}

}  // namespace
}  // namespace safnet::cpu
