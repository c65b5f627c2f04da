// The split-K weight gradients (conv2d, linear) on the simulator: against the CPU reference
// (host/cpu) on ragged shapes whose plans have one partition and many, within bounds derived from
// how each side sums, and the same bits under two schedules. The split-K machinery
// (cuda/kernels/splitk_gemm.h) also runs a plain GEMM with partition counts the test chooses,
// against a float64 sum.
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

constexpr double kU = 0x1p-24;  // unit roundoff of f32

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
      gpu::launch_splitk_gemm<Tile>(PlainGemm{s.m, s.n, s.k, da.get(), db.get(), dc.get()}, plan, w.ws, nullptr);
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

}  // namespace
