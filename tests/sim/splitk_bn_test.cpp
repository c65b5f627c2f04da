// The split-K weight gradients (conv2d, linear) and the multi-block batch norm on the simulator:
// against the CPU reference (host/cpu) on ragged shapes whose plans have one partition and many,
// within bounds derived from how each side sums, and the same bits under two schedules. The
// split-K machinery (cuda/kernels/splitk_gemm.h) also runs a plain GEMM with partition counts the
// test chooses, against a float64 sum.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuda/kernels/batchnorm.h"
#include "cuda/kernels/conv2d.h"
#include "cuda/kernels/linear.h"
#include "cuda/kernels/splitk_gemm.h"
#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"
#include "tests/sim/device_under_test.h"

namespace {

namespace gpu = safnet::cuda;
namespace cpu = safnet::cpu;
using safnet::Saf;
using safnet::SafKind;
using safnet::cpu::ref::random_floats;
using Vec = std::vector<float>;
using Tol = std::vector<double>;

constexpr double kU = 0x1p-24;    // unit roundoff of f32
constexpr double kU64 = 0x1p-53;  // of f64

// gamma_n = n u / (1 - n u): a sum of n terms in precision u, in any order, is within
// gamma_{n-1} sum |terms| of the exact sum (Higham, Accuracy and Stability, 2nd ed., sec. 4.2);
// with a tree, n - 1 may be replaced by the longest chain of additions a term goes through.
double gamma(double n, double u = kU) { return n * u / (1 - n * u); }

Vec abs_of(Vec v) {
  for (float& x : v) x = std::fabs(x);
  return v;
}

// ---- device memory, freed at scope end --------------------------------------------------------

struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
template <typename T>
using DevicePtr = std::unique_ptr<T[], CudaFree>;

template <typename T>
DevicePtr<T> device_zeros(std::size_t n) {
  void* p = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T)));
  SAFNET_CUDA_CHECK(cudaMemset(p, 0, std::max<std::size_t>(n, 1) * sizeof(T)));
  return DevicePtr<T>(static_cast<T*>(p));
}
template <typename T>
DevicePtr<T> upload(const std::vector<T>& h) {
  DevicePtr<T> d = device_zeros<T>(h.size());
  SAFNET_CUDA_CHECK(cudaMemcpy(d.get(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
Vec download(const DevicePtr<float>& d, std::size_t n) {
  Vec h(n);
  SAFNET_CUDA_CHECK(cudaMemcpy(h.data(), d.get(), n * sizeof(float), cudaMemcpyDeviceToHost));
  return h;
}
// A workspace of exactly the bytes the plan asks for, so a launcher that wrote past it would
// trip the simulator's bounds checks.
struct DeviceWorkspace {
  DevicePtr<std::byte> mem;
  gpu::Workspace ws;
  explicit DeviceWorkspace(std::size_t bytes)
      : mem(bytes ? device_zeros<std::byte>(bytes) : nullptr), ws{mem.get(), bytes} {}
};

// ---- schedules and comparisons ----------------------------------------------------------------

// Runs `device` under two schedule seeds (shuffled block and thread orders): every output must be
// the same bits. Returns the first run's outputs.
std::vector<Vec> run_twice(const std::string& what, const std::function<std::vector<Vec>()>& device) {
  const std::uint64_t saved = safnet::test::schedule_seed();
  safnet::test::set_schedule_seed(1);
  const std::vector<Vec> first = device();
  safnet::test::set_schedule_seed(0x9e3779b97f4a7c15ull);
  const std::vector<Vec> second = device();
  safnet::test::set_schedule_seed(saved);
  EXPECT_EQ(first.size(), second.size());
  for (std::size_t o = 0; o < first.size() && o < second.size(); ++o)
    EXPECT_TRUE(first[o].size() == second[o].size() &&
                std::memcmp(first[o].data(), second[o].data(), first[o].size() * sizeof(float)) == 0)
        << what << ": output " << o << " differs between schedules";
  return first;
}

// |got - want| <= tol elementwise; returns the largest |got - want| / tol seen (how much of the
// bound the kernel used), reporting the first few failures.
double expect_within(const Vec& got, const Vec& want, const Tol& tol, const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  double used = 0;
  int bad = 0;
  for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (d > 0) used = std::max(used, tol[i] > 0 ? d / tol[i] : INFINITY);
    if (!(d <= tol[i]) && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", CPU " << want[i] << ", |diff| " << d << " > tol "
                    << tol[i];
  }
  return used;
}

// ---- the split-K machinery with chosen partition counts ---------------------------------------

// C (M, N) = A (M, K) B (K, N), row-major.
struct PlainGemm {
  static constexpr bool kAKFast = true;
  static constexpr bool kBKFast = false;
  int M, N, K;
  const float* A;
  const float* B;
  float* C;
  __device__ float a(int m, int k) const { return A[static_cast<std::int64_t>(m) * K + k]; }
  __device__ float b(int k, int n) const { return B[static_cast<std::int64_t>(k) * N + n]; }
  __device__ void store(int m, int n, float v) const { C[static_cast<std::int64_t>(m) * N + n] = v; }
};

using Tile = gpu::DefaultTile;

// The plan of an M x N x K GEMM with about `parts` partitions, rounded like plan_splitk so none is
// empty.
gpu::SplitKPlan plan_with_parts(int m, int n, int k, int parts) {
  gpu::SplitKPlan p = gpu::plan_splitk(m, n, k, Tile::BM, Tile::BN, Tile::BK, Tile::kThreads);
  const std::int64_t steps = gpu::ceil_div(k, Tile::BK), per = gpu::ceil_div(steps, parts);
  p.parts = static_cast<int>(gpu::ceil_div(steps, per));
  p.k_per_part = static_cast<int>(per * Tile::BK);
  p.reduce_lanes = std::min(p.parts, gpu::kSplitKReduceLanes);
  return p;
}

// The longest chain of f32 additions a product goes through on the device: its partition's run,
// its lane's partitions, the lanes' combination.
double splitk_depth(const gpu::SplitKPlan& p) {
  if (p.parts == 1) return static_cast<double>(p.k);
  return p.k_per_part + gpu::ceil_div(p.parts, p.reduce_lanes) + p.reduce_lanes;
}

TEST(SplitKGemm, ChosenPartitionCountsMatchAFloat64Sum) {
  struct Shape {
    int m, n, k, parts;
  };
  // K = 203 is 26 BK steps minus 5: 3 parts of 9, 9 and 8 steps, the last one ragged; 26 parts of
  // one step; 13 parts over 8 lanes (some lanes add two partitions, some one).
  for (const Shape s : {Shape{70, 65, 203, 1}, Shape{70, 65, 203, 2}, Shape{70, 65, 203, 3}, Shape{5, 130, 203, 26},
                        Shape{33, 17, 1000, 13}, Shape{1, 1, 1, 1}, Shape{3, 200, 9, 2}}) {
    const gpu::SplitKPlan plan = plan_with_parts(s.m, s.n, s.k, s.parts);
    const std::string what = "gemm " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
                             " parts " + std::to_string(plan.parts);
    SCOPED_TRACE(what);
    const Vec a = random_floats(static_cast<std::size_t>(s.m) * s.k, 10 + s.k);
    const Vec b = random_floats(static_cast<std::size_t>(s.k) * s.n, 20 + s.n);
    const std::size_t cs = static_cast<std::size_t>(s.m) * s.n;
    const Vec got = run_twice(what, [&] {
      auto da = upload(a), db = upload(b);
      auto dc = device_zeros<float>(cs);
      DeviceWorkspace w(plan.workspace_bytes());
      gpu::launch_splitk_gemm(PlainGemm{s.m, s.n, s.k, da.get(), db.get(), dc.get()}, plan, w.ws,
                              safnet::MathMode::fp32, nullptr);
      return std::vector<Vec>{download(dc, cs)};
    })[0];
    Vec want(cs);
    Tol tol(cs);
    for (int m = 0; m < s.m; ++m)
      for (int n = 0; n < s.n; ++n) {
        double exact = 0, mag = 0;
        for (int k = 0; k < s.k; ++k) {
          const double p =
              static_cast<double>(a[static_cast<std::size_t>(m) * s.k + k]) * b[static_cast<std::size_t>(k) * s.n + n];
          exact += p;
          mag += std::fabs(p);
        }
        // Each product is rounded once (u) and then goes through at most splitk_depth additions;
        // the final rounding of the float64 reference adds half an ulp.
        want[static_cast<std::size_t>(m) * s.n + n] = static_cast<float>(exact);
        tol[static_cast<std::size_t>(m) * s.n + n] =
            gamma(splitk_depth(plan) + 1) * mag * 1.0001 + kU * std::fabs(exact);
      }
    expect_within(got, want, tol, what);
  }
}

// ---- conv2d and linear weight gradients against the CPU ---------------------------------------

// tau'(raw) per weight from the CPU epilogue applied to ones.
Vec saf_scale(const Saf& saf, const Vec& raw) {
  Vec scale(raw.size(), 1.0f);
  cpu::weight_grad_epilogue(saf, raw.data(), static_cast<std::int64_t>(raw.size()), scale.data());
  return scale;
}

// The bound between the device's and the CPU's dw = tau' * sum: the device's split-K sum is within
// gamma_depth sum|p| of the exact one, the CPU's (any order, BLAS included) within gamma_K sum|p|;
// abs_sum is sum|p| as the CPU computes it (itself low by at most gamma_K); the product with tau'
// rounds once on each side.
Tol weight_grad_tol(const gpu::SplitKPlan& plan, const Vec& abs_sum, const Vec& scale, const Vec& want) {
  const double rel =
      (gamma(splitk_depth(plan)) + gamma(static_cast<double>(plan.k))) * (1 + 2 * gamma(static_cast<double>(plan.k)));
  Tol tol(want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    tol[i] = rel * abs_sum[i] * std::fabs(scale[i]) * (1 + kU) + 2.0001 * kU * std::fabs(want[i]);
  return tol;
}

const Saf kTanh{SafKind::tanh, 1.0f, safnet::NanMode::propagate};

TEST(SplitKWeightGrad, Conv2dMatchesTheCpuWithOneAndManyPartitions) {
  const cpu::ConvGeom shapes[] = {
      {3, 5, 9, 7, 7, 3, 3, 1, 1},     // odd N, C, H, W, K; one M and N tile; parts = steps
      {5, 3, 11, 13, 70, 3, 3, 2, 1},  // stride 2, K across two M tiles
      {7, 9, 5, 5, 11, 1, 1, 1, 0},    // pointwise
      {2, 17, 6, 5, 3, 5, 3, 2, 2},    // C*R*S = 255: four N tiles
      {1, 2, 3, 2, 3, 2, 2, 1, 0},     // N*OH*OW = 2 positions: one BK step, one partition
  };
  bool one = false, many = false;
  double used = 0;
  for (const cpu::ConvGeom& g : shapes) {
    const gpu::SplitKPlan plan = gpu::conv2d_backward_weight_plan(g);
    (plan.parts == 1 ? one : many) = true;
    const std::string what = "conv n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " k" + std::to_string(g.k) +
                             " parts " + std::to_string(plan.parts);
    SCOPED_TRACE(what);
    const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.h * g.w;
    const std::size_t ys = static_cast<std::size_t>(g.n) * g.k * g.oh() * g.ow();
    const std::size_t ws = static_cast<std::size_t>(g.k) * g.c * g.r * g.s;
    const Vec x = random_floats(xs, 30 + g.c), dy = random_floats(ys, 40 + g.k),
              raw = random_floats(ws, 50 + g.n, -2, 2);
    const Vec got = run_twice(what, [&] {
      auto dx = upload(x), ddy = upload(dy), draw = upload(raw);
      auto dw = device_zeros<float>(ws);
      DeviceWorkspace w(plan.workspace_bytes());
      gpu::conv2d_backward_weight(g, dx.get(), ddy.get(), {draw.get(), kTanh}, dw.get(), w.ws, nullptr);
      return std::vector<Vec>{download(dw, ws)};
    })[0];
    Vec want(ws), abs_sum(ws);
    cpu::conv2d_backward_weight(g, x.data(), dy.data(), want.data());
    cpu::conv2d_backward_weight(g, abs_of(x).data(), abs_of(dy).data(), abs_sum.data());
    cpu::weight_grad_epilogue(kTanh, raw.data(), static_cast<std::int64_t>(ws), want.data());
    used = std::max(used, expect_within(got, want, weight_grad_tol(plan, abs_sum, saf_scale(kTanh, raw), want), what));
  }
  EXPECT_TRUE(one && many) << "the shapes must cover plans of one partition and of several";
  std::printf("[splitk] conv2d weight gradients: largest |device - cpu| / tolerance %.3g\n", used);
}

TEST(SplitKWeightGrad, LinearMatchesTheCpuWithOneAndManyPartitions) {
  struct Dims {
    int n, in, out;
  };
  bool one = false, many = false;
  double used = 0;
  for (const Dims d : {Dims{37, 19, 5}, Dims{3, 70, 65}, Dims{130, 9, 66}, Dims{129, 200, 3}}) {
    const gpu::SplitKPlan plan = gpu::linear_backward_weight_plan(d.n, d.in, d.out);
    (plan.parts == 1 ? one : many) = true;
    const std::string what = "linear n" + std::to_string(d.n) + " in" + std::to_string(d.in) + " out" +
                             std::to_string(d.out) + " parts " + std::to_string(plan.parts);
    SCOPED_TRACE(what);
    const std::size_t xs = static_cast<std::size_t>(d.n) * d.in, ys = static_cast<std::size_t>(d.n) * d.out;
    const std::size_t ws = static_cast<std::size_t>(d.out) * d.in, bs = static_cast<std::size_t>(d.out);
    const Vec x = random_floats(xs, 60 + d.in), dy = random_floats(ys, 70 + d.out),
              raw = random_floats(ws, 80 + d.n, -2, 2);
    const std::vector<Vec> got = run_twice(what, [&] {
      auto dx = upload(x), ddy = upload(dy), draw = upload(raw);
      auto dw = device_zeros<float>(ws), db = device_zeros<float>(bs);
      DeviceWorkspace w(plan.workspace_bytes());
      gpu::linear_backward_weight(d.n, d.in, d.out, dx.get(), ddy.get(), {draw.get(), kTanh}, dw.get(), db.get(), w.ws,
                                  nullptr);
      return std::vector<Vec>{download(dw, ws), download(db, bs)};
    });
    Vec want(ws), abs_sum(ws), db(bs), dba(bs);
    cpu::linear_backward_weight(d.n, d.in, d.out, x.data(), dy.data(), want.data(), db.data());
    cpu::linear_backward_weight(d.n, d.in, d.out, abs_of(x).data(), abs_of(dy).data(), abs_sum.data(), dba.data());
    cpu::weight_grad_epilogue(kTanh, raw.data(), static_cast<std::int64_t>(ws), want.data());
    used =
        std::max(used, expect_within(got[0], want, weight_grad_tol(plan, abs_sum, saf_scale(kTanh, raw), want), what));
    expect_within(got[1], db, Tol(bs, 0.0), what + " db");  // both add rows in increasing n
  }
  EXPECT_TRUE(one && many) << "the shapes must cover plans of one partition and of several";
  std::printf("[splitk] linear weight gradients: largest |device - cpu| / tolerance %.3g\n", used);
}

// ---- batch norm against the CPU ---------------------------------------------------------------

// Ragged shapes: odd N, C and HW; partitions ending inside a plane; HW of 1 and above 256.
const cpu::BnGeom kBnShapes[] = {
    {9, 5, 250},   // 2250 values: 2 partitions of 1125, the boundary inside plane 4
    {13, 3, 777},  // 9 partitions of 1123, the last 1117
    {1, 2, 5000},  // one image: the partitions split a single plane
    {3001, 2, 1},  // HW = 1: a step of 256 values crosses 256 planes
    {7, 3, 143},   // 1001 values: one partition
    {5, 7, 3},     // tiny: one partition, most threads idle
};

// Calls f(e) for the offset e in (N, C, HW) of each of channel c's values.
template <typename F>
void for_channel(const cpu::BnGeom& g, int c, F f) {
  for (int n = 0; n < g.n; ++n)
    for (int i = 0; i < g.hw; ++i) f((static_cast<std::size_t>(n) * g.c + c) * g.hw + i);
}

// Error bounds for channel c, derived from the summation orders. Both sides sum each channel's
// values with f32 runs (the CPU over one plane, HW values; the device over one thread's values of
// a partition, ceil(per_part / 256)) combined in f64, so their sums of the same terms differ by at
// most eps_s sum|terms|.
struct BnBounds {
  double eps_s, eps_sq;  // for sums of the inputs; for the squares around the mean (3 more roundings a term)
};
BnBounds bn_bounds(const cpu::BnGeom& g, const gpu::BnPlan& plan) {
  const double m = static_cast<double>(g.n) * g.hw, lg = static_cast<double>(gpu::ceil_div(plan.per_part, 256));
  const double f64 = 2 * gamma(m + 64, kU64);  // the f64 stages of both sides: at most m + 64 additions deep
  return {gamma(g.hw) + gamma(lg) + f64, gamma(g.hw + 3.0) + gamma(lg + 3) + f64};
}

TEST(MultiBlockBatchNorm, TrainingForwardMatchesTheCpu) {
  bool one = false, many = false;
  double used = 0;
  for (const cpu::BnGeom& g : kBnShapes) {
    const gpu::BnPlan plan = gpu::batchnorm_plan(g);
    (plan.parts == 1 ? one : many) = true;
    const std::string what = "bn n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " hw" + std::to_string(g.hw) +
                             " parts " + std::to_string(plan.parts);
    SCOPED_TRACE(what);
    const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.hw, cs = static_cast<std::size_t>(g.c);
    // An offset mean, so the statistics are not trivially near zero.
    const Vec x = random_floats(xs, 90 + g.hw, 0.5f, 2.5f), gamma_ = random_floats(cs, 91, 0.5f, 1.5f),
              beta = random_floats(cs, 92), rm0 = random_floats(cs, 93), rv0 = random_floats(cs, 94, 0.5f, 2.0f);
    const float eps = 1e-5f, mom = 0.1f;
    const std::vector<Vec> got = run_twice(what, [&] {
      auto dx = upload(x), dg = upload(gamma_), db = upload(beta), rm = upload(rm0), rv = upload(rv0);
      auto y = device_zeros<float>(xs), mean = device_zeros<float>(cs), inv = device_zeros<float>(cs);
      DeviceWorkspace w(plan.workspace_bytes());
      gpu::batchnorm_forward_train(g, dx.get(), dg.get(), db.get(), eps, mom, y.get(), mean.get(), inv.get(), rm.get(),
                                   rv.get(), w.ws, nullptr);
      return std::vector<Vec>{download(y, xs), download(mean, cs), download(inv, cs), download(rm, cs),
                              download(rv, cs)};
    });
    Vec y(xs), mean(cs), inv(cs), rm = rm0, rv = rv0;
    cpu::batchnorm_forward_train(g, x.data(), gamma_.data(), beta.data(), eps, mom, y.data(), mean.data(), inv.data(),
                                 rm.data(), rv.data());
    const BnBounds b = bn_bounds(g, plan);
    const double m = static_cast<double>(g.n) * g.hw;
    Tol ty(xs), tmean(cs), tinv(cs), trm(cs), trv(cs);
    for (int c = 0; c < g.c; ++c) {
      double s1 = 0, var = 0;
      for_channel(g, c, [&](std::size_t e) {
        s1 += std::fabs(x[e]);
        var += (static_cast<double>(x[e]) - mean[c]) * (static_cast<double>(x[e]) - mean[c]);
      });
      var /= m;
      // Each side's mean (rounded to f32) is within this of the exact one, so also of the other's.
      const double dmu = b.eps_s * s1 / m + 2.0001 * kU * std::fabs(mean[c]) + 0x1p-149;
      // Var is summed around each side's own f32 mean: sum (x - mu')^2 = sum (x - mu)^2 + m (mu - mu')^2,
      // so the means' errors enter squared, besides eps_sq of the sum.
      const double dvar = b.eps_sq * var + (1 + b.eps_sq) * dmu * dmu;
      const double dinv =
          inv[c] * (0.5 * 1.01 * dvar / (var + eps) + 2.0001 * kU);  // d/dv (v + eps)^-1/2, rounded to f32
      tmean[c] = dmu;
      tinv[c] = dinv;
      trm[c] = mom * dmu + 4 * kU * (std::fabs(rm[c]) + mom * std::fabs(mean[c]));
      trv[c] = mom * dvar * m / (m - 1) * (1 + 4 * kU) + 4 * kU * (std::fabs(rv[c]) + mom * var * m / (m - 1));
      const double ga = std::fabs(gamma_[c]), scale = ga * inv[c];
      for_channel(g, c, [&](std::size_t e) {
        const double xc = std::fabs(x[e] - mean[c]);
        // (x - mu) scale + shift with each side's mu and scale; three roundings before the
        // shift's and one after, on each side.
        ty[e] = (scale + ga * dinv) * dmu + xc * ga * dinv + 2.0001 * (3 * kU * xc * scale + kU * std::fabs(y[e]));
      });
    }
    used = std::max({used, expect_within(got[0], y, ty, what + " y"), expect_within(got[1], mean, tmean, what + " mean"),
                     expect_within(got[2], inv, tinv, what + " invstd"),
                     expect_within(got[3], rm, trm, what + " running_mean"),
                     expect_within(got[4], rv, trv, what + " running_var")});
  }
  EXPECT_TRUE(one && many) << "the shapes must cover plans of one partition and of several";
  std::printf("[bn] training forward: largest |device - cpu| / tolerance %.3g\n", used);
}

TEST(MultiBlockBatchNorm, BackwardMatchesTheCpu) {
  double used = 0;
  for (const cpu::BnGeom& g : kBnShapes) {
    const gpu::BnPlan plan = gpu::batchnorm_plan(g);
    const std::string what = "bn backward n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " hw" +
                             std::to_string(g.hw) + " parts " + std::to_string(plan.parts);
    SCOPED_TRACE(what);
    const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.hw, cs = static_cast<std::size_t>(g.c);
    const Vec x = random_floats(xs, 100 + g.hw, 0.5f, 2.5f), dy = random_floats(xs, 101 + g.hw),
              gamma_ = random_floats(cs, 102, 0.5f, 1.5f);
    // Both sides get the same saved statistics, so only the backward's sums can differ.
    const Vec mean = random_floats(cs, 103, 1.3f, 1.7f), inv = random_floats(cs, 104, 1.5f, 2.0f);
    const std::vector<Vec> got = run_twice(what, [&] {
      auto dx_in = upload(x), ddy = upload(dy), dg = upload(gamma_), dmean = upload(mean), dinv = upload(inv);
      auto dx = device_zeros<float>(xs), dgamma = device_zeros<float>(cs), dbeta = device_zeros<float>(cs);
      DeviceWorkspace w(plan.workspace_bytes());
      gpu::batchnorm_backward(g, dx_in.get(), ddy.get(), dg.get(), dmean.get(), dinv.get(), dx.get(), dgamma.get(),
                              dbeta.get(), w.ws, nullptr);
      return std::vector<Vec>{download(dx, xs), download(dgamma, cs), download(dbeta, cs)};
    });
    Vec dx(xs), dgamma(cs), dbeta(cs);
    cpu::batchnorm_backward(g, x.data(), dy.data(), gamma_.data(), mean.data(), inv.data(), dx.data(), dgamma.data(),
                            dbeta.data());
    const double eps_s = bn_bounds(g, plan).eps_s, m = static_cast<double>(g.n) * g.hw;
    Tol tdx(xs), tdg(cs), tdb(cs);
    for (int c = 0; c < g.c; ++c) {
      double s_dy = 0, s_t = 0, sum_dy = 0, sum_t = 0;  // sum |dy|, sum |dy (x - mean)| (as both compute the terms)
      for_channel(g, c, [&](std::size_t e) {
        const float t = dy[e] * (x[e] - mean[c]);
        s_dy += std::fabs(dy[e]);
        s_t += std::fabs(t);
        sum_dy += dy[e];
        sum_t += t;
      });
      const double iv = inv[c], k1 = static_cast<double>(gamma_[c]) * iv;
      const double d_sum_dy = eps_s * s_dy, d_dg = iv * eps_s * s_t * (1 + 4 * kU64);
      tdb[c] = d_sum_dy + 2.0001 * kU * std::fabs(dbeta[c]);
      tdg[c] = d_dg + 2.0001 * kU * std::fabs(dgamma[c]);
      // dx = a1 dy + a2 (x - mean) + a3: a1 is the same on both sides; a2 and a3 carry the sums'
      // differences and one f32 rounding each; the expression rounds four times on each side.
      const double a2 = k1 * iv * sum_t * iv / m, a3 = k1 * sum_dy / m;
      const double da2 = k1 * iv * d_dg / m + 2.0001 * kU * std::fabs(a2),
                   da3 = k1 * d_sum_dy / m + 2.0001 * kU * std::fabs(a3);
      for_channel(g, c, [&](std::size_t e) {
        const double xc = std::fabs(x[e] - mean[c]);
        tdx[e] = xc * da2 * (1 + kU) + da3 +
                 2.0001 * 4 * kU * (std::fabs(k1 * dy[e]) + std::fabs(a2) * xc + std::fabs(a3) + da2 * xc + da3);
      });
    }
    used = std::max({used, expect_within(got[0], dx, tdx, what + " dx"),
                     expect_within(got[1], dgamma, tdg, what + " dgamma"),
                     expect_within(got[2], dbeta, tdb, what + " dbeta")});
  }
  std::printf("[bn] backward: largest |device - cpu| / tolerance %.3g\n", used);
}

TEST(MultiBlockBatchNorm, EvaluationEqualsTheCpu) {
  for (const cpu::BnGeom& g : {kBnShapes[0], kBnShapes[3], kBnShapes[5], cpu::BnGeom{2, 3, 12544}}) {
    const std::string what =
        "bn eval n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " hw" + std::to_string(g.hw);
    SCOPED_TRACE(what);
    const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.hw, cs = static_cast<std::size_t>(g.c);
    const Vec x = random_floats(xs, 110 + g.hw), gamma_ = random_floats(cs, 111, 0.5f, 1.5f),
              beta = random_floats(cs, 112), rm = random_floats(cs, 113), rv = random_floats(cs, 114, 0.5f, 2.0f);
    const Vec got = run_twice(what, [&] {
      auto dx = upload(x), dg = upload(gamma_), db = upload(beta), drm = upload(rm), drv = upload(rv);
      auto y = device_zeros<float>(xs);
      gpu::batchnorm_forward_eval(g, dx.get(), dg.get(), db.get(), drm.get(), drv.get(), 1e-5f, y.get(), nullptr);
      return std::vector<Vec>{download(y, xs)};
    })[0];
    Vec y(xs);
    cpu::batchnorm_forward_eval(g, x.data(), gamma_.data(), beta.data(), rm.data(), rv.data(), 1e-5f, y.data());
    // No sum: the same f32 and f64 operations per element on both sides (the simulator runs the
    // kernel through the host compiler, which contracts no multiply-add here), so the same bits.
    expect_within(got, y, Tol(xs, 0.0), what);
  }
}

TEST(MultiBlockBatchNorm, LaunchersRejectASmallWorkspace) {
  const cpu::BnGeom g{9, 5, 250};
  const std::size_t need = gpu::batchnorm_plan(g).workspace_bytes();
  DeviceWorkspace w(need - 8);
  EXPECT_THROW(
      gpu::batchnorm_backward(g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, w.ws, nullptr),
      gpu::KernelArgError);
  const cpu::ConvGeom c{3, 5, 9, 7, 7, 3, 3, 1, 1};
  EXPECT_THROW(gpu::conv2d_backward_weight(c, nullptr, nullptr, {}, nullptr, gpu::Workspace{}, nullptr),
               gpu::KernelArgError);
}

}  // namespace
