// Every CUDA kernel against its CPU reference (host/cpu/ops.h) on the same random inputs, case by
// case from one table: shapes that divide no tile, stride 2, 1x1 and 3x3, batch 1, every weight
// storage dtype and SAF kind. Each case runs twice under different schedule seeds, which must give
// identical bits, and matches the CPU within a bound derived from f32 summation error, or for the
// tensor-core math modes from their operand rounding and accumulation (tc_rel_bound).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/kernels/batchnorm.h"
#include "cuda/kernels/common.h"
#include "cuda/kernels/conv2d.h"
#include "cuda/kernels/elementwise.h"
#include "cuda/kernels/linear.h"
#include "cuda/kernels/optim.h"
#include "cuda/kernels/pool.h"
#include "cuda/kernels/shortcut.h"
#include "cuda/kernels/softmax_ce.h"
#include "cuda/kernels/weight_view.h"
#include "tests/sim/device_under_test.h"
#include "tests/sim/tc_bound.h"
#include "host/cpu/ops.h"
#include "host/faults/storage.h"
#include "host/optim.h"
#include "host/params.h"

namespace {

namespace gpu = safnet::cuda;
namespace cpu = safnet::cpu;
using safnet::DType;
using safnet::NanMode;
using safnet::Saf;
using safnet::SafKind;
using safnet::StorageFormat;
using Vec = std::vector<float>;

constexpr double kU = 0x1p-24;  // unit roundoff of f32

// ---- device memory for one run ------------------------------------------------------------

class Dev {
 public:
  ~Dev() {
    for (void* p : ptrs_) cudaFree(p);
  }
  template <typename T>
  T* alloc(std::size_t n) {
    void* p = nullptr;
    SAFNET_CUDA_CHECK(cudaMalloc(&p, (n ? n : 1) * sizeof(T)));
    ptrs_.push_back(p);
    return static_cast<T*>(p);
  }
  template <typename T>
  T* up(const std::vector<T>& h) {
    T* p = alloc<T>(h.size());
    SAFNET_CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return p;
  }
  template <typename T>
  static Vec down(const T* p, std::size_t n) {
    std::vector<T> h(n);
    SAFNET_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return Vec(h.begin(), h.end());
  }

 private:
  std::vector<void*> ptrs_;
};

// ---- cases ----------------------------------------------------------------------------------

// One output of a run, in output order; integer outputs are carried as floats (exact here).
using Outputs = std::vector<std::pair<std::string, Vec>>;
// The reference value and allowed |got - want| of each element; NaN wants a NaN.
struct Expect {
  Vec want, tol;
};

struct Case {
  std::string name;
  std::function<Outputs()> device;
  std::function<std::vector<Expect>()> reference;
};

Vec random_vec(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Vec v(n);
  for (float& x : v) x = d(rng);
  return v;
}

Vec abs_of(Vec v) {
  for (float& x : v) x = std::fabs(x);
  return v;
}

Expect exact(Vec want) { return {want, Vec(want.size(), 0.0f)}; }

// Two f32 sums of the same `terms` products in different orders differ by at most
// 2 gamma_terms sum|products| (gamma_n = n u / (1 - n u)); abs_sum is that sum of magnitudes.
Expect summed(Vec want, const Vec& abs_sum, long terms) {
  Vec tol(want.size());
  const double g = terms * kU / (1.0 - terms * kU);
  for (std::size_t i = 0; i < want.size(); ++i) tol[i] = static_cast<float>(2.0 * g * abs_sum[i] + 1e-30);
  return {std::move(want), std::move(tol)};
}

// |v_device - v_cpu| for two results k ulp apart, v_cpu = v: ulp(y) <= 2u|y| for normal y, and
// 2^-149 for subnormal; the factor covers |v_device| exceeding |v| by the k ulp themselves.
double ulps_apart(int k, double v) { return k == 0 ? 0.0 : k * (2 * kU * std::fabs(v) * 1.0001 + 0x1p-149); }

// Bound on |tau_device(x) - tau_cpu(x)| where tau_cpu(x) = v (see device_under_test.h; 0 on the
// simulator). tanh_c multiplies c x exactly alike on both before tanhf; arctan2pi rounds once
// more after atanf, which can move the result by one more ulp.
double saf_value_diff(const Saf& s, float v) {
  if (std::isnan(v)) return 0.0;
  switch (s.kind) {
    case SafKind::tanh:
    case SafKind::tanh_c: return ulps_apart(safnet::test::kTanhfUlps, v);
    case SafKind::arctan: return ulps_apart(safnet::test::kAtanfUlps, v);
    case SafKind::arctan2pi: return ulps_apart(safnet::test::kAtanfUlps ? safnet::test::kAtanfUlps + 1 : 0, v);
    default: return 0.0;  // none, softsign: the same IEEE operations on both
  }
}

// Largest relative difference of tau between device and CPU over all weights: a conv or linear
// output then differs by at most this times sum |x| |tau(w)| beyond its summation order.
double saf_value_rel(const Saf& s) { return saf_value_diff(s, 1.0f); }

// Bound on |tau'_device(x) - tau'_cpu(x)| at raw x (saf_grad in cuda/saf.h). tanh: 1 - t^2 with
// t = tanhf(.) relatively d = kTanhfUlps * 2u apart moves by 2 d t^2 (plus d^2 t^2), and the two
// roundings (or one fused) by 2u (t^2 + |1 - t^2|); tanh_c scales that by |c| and rounds once more.
// arctan(2pi): 1 + x x fused or not differs by u x^2 <= u (1 + x^2), then one division: 3u relative.
double saf_grad_diff(const Saf& s, float x) {
  if (std::isnan(x) || !safnet::test::kMayContract) return 0.0;
  const double cpu = safnet::saf_grad(s, x);
  switch (s.kind) {
    case SafKind::tanh:
    case SafKind::tanh_c: {
      const double c = s.kind == SafKind::tanh ? 1.0 : std::fabs(s.c);
      const double t = std::tanh(static_cast<double>(s.kind == SafKind::tanh ? x : s.c * x));
      const double d = 2 * safnet::test::kTanhfUlps * kU * 1.0001;
      const double inner = (2 * d + d * d) * t * t + 2 * kU * (t * t + std::fabs(1 - t * t)) * 1.0001;
      return c * inner + (s.kind == SafKind::tanh ? 0.0 : 2 * kU * std::fabs(cpu));
    }
    case SafKind::arctan:
    case SafKind::arctan2pi: return 3 * kU * std::fabs(cpu) * 1.0001;
    default: return 0.0;  // none: 1; softsign: 1 / (d d), no multiply-add to contract
  }
}

const char* saf_name(const Saf& s) {
  static const char* names[] = {"none", "tanh", "tanh_c", "softsign", "arctan", "arctan2pi"};
  return names[static_cast<int>(s.kind)];
}

// Weight storage of the tests: host DType and the device descriptor.
struct Storage {
  DType dtype;
  StorageFormat dev;
};
const Storage kStorages[] = {
    {DType::f32(), {StorageFormat::Kind::f32, 0}},
    {DType::f16(), {StorageFormat::Kind::f16, 0}},
    {DType::bf16(), {StorageFormat::Kind::bf16, 0}},
    {DType::fixed(2, 5), {StorageFormat::Kind::fixed, 5}},
};
const Saf kSafs[] = {
    {SafKind::none, 1.0f, NanMode::propagate},   {SafKind::tanh, 1.0f, NanMode::propagate},
    {SafKind::tanh_c, 0.5f, NanMode::zero},      {SafKind::softsign, 1.0f, NanMode::propagate},
    {SafKind::arctan, 1.0f, NanMode::zero},      {SafKind::arctan2pi, 1.0f, NanMode::propagate},
    {SafKind::none, 1.0f, NanMode::zero},
};
constexpr int kNumSafs = sizeof(kSafs) / sizeof(kSafs[0]);

// Raw weights in storage: random in [-2, 2]; with NanMode::zero one NaN (floating storage only),
// which must read as 0 through the fused load exactly as through the CPU weight view.
struct RawWeights {
  safnet::StorageBuffer buf;
  Vec view;  // tau(dequant(raw)) from the CPU weight view
  Vec raw_f32;
};
RawWeights make_weights(std::size_t count, const Storage& st, const Saf& saf, unsigned seed) {
  Vec w = random_vec(count, seed, -2.0f, 2.0f);
  if (saf.nan == NanMode::zero && st.dtype.kind != DType::Kind::fixed && count > 2) w[count / 2] = NAN;
  RawWeights r{safnet::encode_storage(w.data(), static_cast<std::int64_t>(count), st.dtype), Vec(count), w};
  cpu::weight_view_load(saf, st.dtype, r.buf.bytes.data(), static_cast<std::int64_t>(count), r.view.data());
  return r;
}

std::string conv_name(const char* op, const cpu::ConvGeom& g) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s n%d c%d %dx%d k%d %dx%d s%d p%d", op, g.n, g.c, g.h, g.w, g.k, g.r, g.s,
                g.stride, g.pad);
  return buf;
}

const cpu::ConvGeom kConvs[] = {
    {1, 3, 9, 9, 5, 3, 3, 1, 1},    // batch 1, 3x3, ragged everywhere
    {2, 4, 7, 6, 9, 3, 3, 2, 1},    // stride 2, non-square
    {3, 5, 5, 5, 7, 1, 1, 1, 0},    // pointwise
    {2, 6, 8, 8, 10, 1, 1, 2, 0},   // 1x1 stride 2 (ResNet downsampling)
    {2, 3, 11, 11, 70, 3, 3, 1, 0}, // K across two M-tiles, no padding
    {1, 17, 6, 5, 3, 5, 3, 2, 2},   // rectangular kernel, C*R*S = 255
    // ResNet 3x3 layers: rows of C*R*S = 144 and 288 words are 16-byte aligned in every storage
    // format, so the tensor-core kernels copy the weights raw in 16-byte chunks.
    {2, 16, 6, 6, 20, 3, 3, 1, 1},
    {1, 32, 5, 5, 33, 3, 3, 2, 1},
};

// ---- tensor-core math modes (cuda/kernels/tc_gemm.h) ----------------------------------------
//
// The CPU's f32 sum (gamma_depth) plus the device's tensor-core bound, times sum |a| |b|.
Expect tc_summed(Vec want, const Vec& abs_sum, long depth, safnet::MathMode m) {
  Expect e = summed(std::move(want), abs_sum, depth);
  const double g = depth * kU / (1.0 - depth * kU);
  for (std::size_t i = 0; i < e.want.size(); ++i)
    e.tol[i] = static_cast<float>((g + safnet::test::tc_rel_bound(m, depth)) * abs_sum[i] + 1e-30);
  return e;
}

// The expectation of a forward product of `depth` terms (sum |a| |b| in abs_sum) in math mode m.
Expect gemm_expect(Vec want, const Vec& abs_sum, long depth, safnet::MathMode m) {
  return m == safnet::MathMode::fp32 ? summed(std::move(want), abs_sum, depth) : tc_summed(std::move(want), abs_sum, depth, m);
}

Case conv_forward_case(const cpu::ConvGeom& g, const std::string& tag, std::shared_ptr<RawWeights> w,
                       std::shared_ptr<Vec> x, StorageFormat dst, Saf saf, safnet::MathMode mode) {
  const std::size_t ys = static_cast<std::size_t>(g.n) * g.k * g.oh() * g.ow();
  return {conv_name("conv2d_forward", g) + tag,
          [=] {
            Dev d;
            float* y = d.alloc<float>(ys);
            gpu::conv2d_forward(g, d.up(*x), {d.up(w->buf.bytes), dst, saf}, y, nullptr, mode);
            return Outputs{{"y", Dev::down(y, ys)}};
          },
          [=] {
            Vec y(ys), ya(ys);
            cpu::conv2d_forward(g, x->data(), w->view.data(), y.data());
            cpu::conv2d_forward(g, abs_of(*x).data(), abs_of(w->view).data(), ya.data());
            Expect e = gemm_expect(y, ya, static_cast<long>(g.c) * g.r * g.s, mode);
            for (std::size_t i = 0; i < ys; ++i) e.tol[i] += static_cast<float>(saf_value_rel(saf) * ya[i]);
            return std::vector<Expect>{e};
          }};
}

Case linear_forward_case(int n, int in, int out, const std::string& tag, std::shared_ptr<RawWeights> w,
                         std::shared_ptr<Vec> x, std::shared_ptr<Vec> b, StorageFormat dst, Saf saf, bool bias,
                         safnet::MathMode mode) {
  const std::size_t ys = static_cast<std::size_t>(n) * out;
  return {"linear_forward" + tag,
          [=] {
            Dev d;
            float* y = d.alloc<float>(ys);
            gpu::linear_forward(n, in, out, d.up(*x), {d.up(w->buf.bytes), dst, saf}, bias ? d.up(*b) : nullptr, y,
                                nullptr, mode);
            return Outputs{{"y", Dev::down(y, ys)}};
          },
          [=] {
            Vec y(ys), ya(ys);
            const Vec ba = abs_of(*b);
            cpu::linear_forward(n, in, out, x->data(), w->view.data(), bias ? b->data() : nullptr, y.data());
            cpu::linear_forward(n, in, out, abs_of(*x).data(), abs_of(w->view).data(), bias ? ba.data() : nullptr,
                                ya.data());
            // On tensor cores the bias is added after the products: one more rounding, within 2^-24
            // of |y| plus the error so far.
            Expect e = gemm_expect(y, ya, in + 1, mode);
            for (std::size_t i = 0; i < ys; ++i) {
              e.tol[i] += static_cast<float>(saf_value_rel(saf) * ya[i]);
              if (bias && mode != safnet::MathMode::fp32)
                e.tol[i] += static_cast<float>(kU * (std::fabs(y[i]) + e.tol[i]) * 1.0001);
            }
            return std::vector<Expect>{e};
          }};
}

Case conv_backward_data_case(const cpu::ConvGeom& g, const std::string& tag, std::shared_ptr<RawWeights> w,
                             std::shared_ptr<Vec> dy, StorageFormat dst, Saf saf, safnet::MathMode mode) {
  const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.h * g.w;
  return {conv_name("conv2d_backward_data", g) + tag,
          [=] {
            Dev d;
            float* dx = d.alloc<float>(xs);
            gpu::conv2d_backward_data(g, d.up(*dy), {d.up(w->buf.bytes), dst, saf}, dx, nullptr, mode);
            return Outputs{{"dx", Dev::down(dx, xs)}};
          },
          [=] {
            Vec dx(xs), dxa(xs);
            cpu::conv2d_backward_data(g, dy->data(), w->view.data(), dx.data());
            cpu::conv2d_backward_data(g, abs_of(*dy).data(), abs_of(w->view).data(), dxa.data());
            Expect e = gemm_expect(dx, dxa, static_cast<long>(g.k) * g.r * g.s, mode);
            for (std::size_t i = 0; i < xs; ++i) e.tol[i] += static_cast<float>(saf_value_rel(saf) * dxa[i]);
            return std::vector<Expect>{e};
          }};
}

Case linear_backward_data_case(int n, int in, int out, const std::string& tag, std::shared_ptr<RawWeights> w,
                               std::shared_ptr<Vec> dy, StorageFormat dst, Saf saf, safnet::MathMode mode) {
  const std::size_t xs = static_cast<std::size_t>(n) * in;
  return {"linear_backward_data" + tag,
          [=] {
            Dev d;
            float* dx = d.alloc<float>(xs);
            gpu::linear_backward_data(n, in, out, d.up(*dy), {d.up(w->buf.bytes), dst, saf}, dx, nullptr, mode);
            return Outputs{{"dx", Dev::down(dx, xs)}};
          },
          [=] {
            Vec dx(xs), dxa(xs);
            cpu::linear_backward_data(n, in, out, dy->data(), w->view.data(), dx.data());
            cpu::linear_backward_data(n, in, out, abs_of(*dy).data(), abs_of(w->view).data(), dxa.data());
            Expect e = gemm_expect(dx, dxa, out, mode);
            for (std::size_t i = 0; i < xs; ++i) e.tol[i] += static_cast<float>(saf_value_rel(saf) * dxa[i]);
            return std::vector<Expect>{e};
          }};
}

// Turns the expectation of a weight gradient into that of its product with tau'(raw): one more
// rounding, and tau' on the device vs here.
void add_saf_grad_epilogue(Expect& e, const Saf& saf, const Vec& raw) {
  const std::size_t ws = raw.size();
  const Vec grad = e.want;
  Vec scale(ws, 1.0f);
  cpu::weight_grad_epilogue(saf, raw.data(), static_cast<std::int64_t>(ws), e.want.data());
  cpu::weight_grad_epilogue(saf, raw.data(), static_cast<std::int64_t>(ws), scale.data());
  for (std::size_t i = 0; i < ws; ++i) {
    const double ds = saf_grad_diff(saf, raw[i]);
    e.tol[i] = static_cast<float>(e.tol[i] * (std::fabs(scale[i]) + ds) + kU * std::fabs(e.want[i]) +
                                  ds * std::fabs(grad[i]));
  }
}

// The weight gradient's epilogue multiplies by tau'(raw f32) when `epilogue`.
Case conv_backward_weight_case(const cpu::ConvGeom& g, const std::string& tag, std::shared_ptr<Vec> raw,
                               std::shared_ptr<Vec> x, std::shared_ptr<Vec> dy, Saf saf, bool epilogue,
                               safnet::MathMode mode) {
  const std::size_t ws = static_cast<std::size_t>(g.k) * g.c * g.r * g.s;
  return {conv_name("conv2d_backward_weight", g) + tag,
          [=] {
            Dev d;
            float* dw = d.alloc<float>(ws);
            const gpu::SafGrad e{epilogue ? d.up(*raw) : nullptr, saf};
            gpu::conv2d_backward_weight(g, d.up(*x), d.up(*dy), e, dw, nullptr, mode);
            return Outputs{{"dw", Dev::down(dw, ws)}};
          },
          [=] {
            Vec dw(ws), dwa(ws);
            cpu::conv2d_backward_weight(g, x->data(), dy->data(), dw.data());
            cpu::conv2d_backward_weight(g, abs_of(*x).data(), abs_of(*dy).data(), dwa.data());
            Expect e = gemm_expect(dw, dwa, static_cast<long>(g.n) * g.oh() * g.ow(), mode);
            if (epilogue) add_saf_grad_epilogue(e, saf, *raw);
            return std::vector<Expect>{e};
          }};
}

Case linear_backward_weight_case(int n, int in, int out, const std::string& tag, std::shared_ptr<Vec> raw,
                                 std::shared_ptr<Vec> x, std::shared_ptr<Vec> dy, Saf saf, safnet::MathMode mode) {
  const std::size_t ws = static_cast<std::size_t>(out) * in;
  return {"linear_backward_weight" + tag,
          [=] {
            Dev d;
            float* dw = d.alloc<float>(ws);
            float* db = d.alloc<float>(static_cast<std::size_t>(out));
            gpu::linear_backward_weight(n, in, out, d.up(*x), d.up(*dy), {d.up(*raw), saf}, dw, db, nullptr, mode);
            return Outputs{{"dw", Dev::down(dw, ws)}, {"db", Dev::down(db, static_cast<std::size_t>(out))}};
          },
          [=] {
            Vec dw(ws), dwa(ws), db(static_cast<std::size_t>(out)), dba(db.size());
            cpu::linear_backward_weight(n, in, out, x->data(), dy->data(), dw.data(), db.data());
            cpu::linear_backward_weight(n, in, out, abs_of(*x).data(), abs_of(*dy).data(), dwa.data(), dba.data());
            Expect e = gemm_expect(dw, dwa, n, mode);
            add_saf_grad_epilogue(e, saf, *raw);
            return std::vector<Expect>{e, exact(db)};  // db: both sum rows in increasing n, in f32
          }};
}

void add_conv_cases(std::vector<Case>& cases) {
  int combo = 0;
  for (const cpu::ConvGeom& g : kConvs) {
    const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.h * g.w;
    const std::size_t ys = static_cast<std::size_t>(g.n) * g.k * g.oh() * g.ow();
    const std::size_t ws = static_cast<std::size_t>(g.k) * g.c * g.r * g.s;
    for (const Storage& st : kStorages) {
      const Saf saf = kSafs[combo++ % kNumSafs];
      const std::string tag = std::string(" ") + st.dtype.name() + " " + saf_name(saf) +
                              (saf.nan == NanMode::zero ? "/nan0" : "");
      auto w = std::make_shared<RawWeights>(make_weights(ws, st, saf, 100 + combo));
      auto x = std::make_shared<Vec>(random_vec(xs, 200 + combo));
      auto dy = std::make_shared<Vec>(random_vec(ys, 300 + combo));
      const StorageFormat dst = st.dev;
      cases.push_back(conv_forward_case(g, tag, w, x, dst, saf, safnet::MathMode::fp32));
      cases.push_back(conv_backward_data_case(g, tag, w, dy, dst, saf, safnet::MathMode::fp32));
    }
    // The weight gradient's epilogue multiplies by tau'(raw f32): one SAF per geometry, and once without.
    for (const bool epilogue : {false, true}) {
      const Saf saf = kSafs[combo++ % kNumSafs];
      const std::string tag = epilogue ? std::string(" tau' ") + saf_name(saf) : std::string(" no epilogue");
      auto raw = std::make_shared<Vec>(random_vec(ws, 400 + combo, -2.0f, 2.0f));
      auto x = std::make_shared<Vec>(random_vec(xs, 500 + combo));
      auto dy = std::make_shared<Vec>(random_vec(ys, 600 + combo));
      cases.push_back(conv_backward_weight_case(g, tag, raw, x, dy, saf, epilogue, safnet::MathMode::fp32));
    }
  }
}

struct LinearShape {
  int n, in, out;
};
const LinearShape kLinears[] = {{1, 1, 1}, {3, 70, 65}, {5, 9, 130}, {67, 17, 10}, {2, 200, 3}};

void add_linear_cases(std::vector<Case>& cases) {
  int combo = 3;
  for (const LinearShape& sh : kLinears) {
    const int n = sh.n, in = sh.in, out = sh.out;
    const std::size_t xs = static_cast<std::size_t>(n) * in, ys = static_cast<std::size_t>(n) * out;
    const std::size_t ws = static_cast<std::size_t>(out) * in;
    const std::string shape = " n" + std::to_string(n) + " in" + std::to_string(in) + " out" + std::to_string(out);
    for (const Storage& st : kStorages) {
      const Saf saf = kSafs[combo++ % kNumSafs];
      const bool bias = combo % 2 == 0;
      const std::string tag = shape + " " + st.dtype.name() + " " + saf_name(saf) +
                              (saf.nan == NanMode::zero ? "/nan0" : "") + (bias ? " bias" : "");
      auto w = std::make_shared<RawWeights>(make_weights(ws, st, saf, 700 + combo));
      auto x = std::make_shared<Vec>(random_vec(xs, 800 + combo));
      auto b = std::make_shared<Vec>(random_vec(static_cast<std::size_t>(out), 900 + combo));
      auto dy = std::make_shared<Vec>(random_vec(ys, 1000 + combo));
      const StorageFormat dst = st.dev;
      cases.push_back(linear_forward_case(n, in, out, tag, w, x, b, dst, saf, bias, safnet::MathMode::fp32));
      cases.push_back(linear_backward_data_case(n, in, out, tag, w, dy, dst, saf, safnet::MathMode::fp32));
    }
    const Saf saf = kSafs[combo++ % kNumSafs];
    auto raw = std::make_shared<Vec>(random_vec(ws, 1100 + combo, -2.0f, 2.0f));
    auto x = std::make_shared<Vec>(random_vec(xs, 1200 + combo));
    auto dy = std::make_shared<Vec>(random_vec(ys, 1300 + combo));
    cases.push_back(linear_backward_weight_case(n, in, out, shape + " tau' " + saf_name(saf), raw, x, dy, saf,
                                                safnet::MathMode::fp32));
  }
}

const safnet::MathMode kTcModes[] = {safnet::MathMode::tf32x3, safnet::MathMode::tf32, safnet::MathMode::bf16};

// Forward, backward-data and backward-weight (with tau') in each mode over every geometry of kConvs
// and kLinears, the storage dtype and SAF turning with the case so that every mode meets every
// dtype; the fused epilogue, with a residual and ReLU, on the geometries of 7 or more output
// channels. Shapes include 70 output channels (two M-tiles of 64), depths of 5 to 630 and the
// ResNet rows the kernels copy raw; the weight gradients are split-K.
void add_tensor_core_cases(std::vector<Case>& cases) {
  int combo = 0;
  for (const safnet::MathMode mode : kTcModes) {
    const std::string mname = std::string(" ") + safnet::math_mode_name(mode);
    for (const cpu::ConvGeom& g : kConvs) {
      const Storage st = kStorages[combo % 4];
      const Saf saf = kSafs[combo++ % kNumSafs];
      const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.h * g.w;
      const std::size_t ys = static_cast<std::size_t>(g.n) * g.k * g.oh() * g.ow();
      const std::size_t ws = static_cast<std::size_t>(g.k) * g.c * g.r * g.s;
      const long depth = static_cast<long>(g.c) * g.r * g.s;
      const std::string tag = mname + " " + st.dtype.name() + " " + saf_name(saf) + (saf.nan == NanMode::zero ? "/nan0" : "");
      auto w = std::make_shared<RawWeights>(make_weights(ws, st, saf, 3100 + combo));
      auto x = std::make_shared<Vec>(random_vec(xs, 3200 + combo));
      const StorageFormat dst = st.dev;
      cases.push_back(conv_forward_case(g, tag, w, x, dst, saf, mode));
      cases.push_back(conv_backward_data_case(g, tag, w, std::make_shared<Vec>(random_vec(ys, 3250 + combo)), dst, saf,
                                              mode));
      cases.push_back(conv_backward_weight_case(g, mname + " tau' " + saf_name(saf),
                                                std::make_shared<Vec>(random_vec(ws, 3260 + combo, -2.0f, 2.0f)), x,
                                                std::make_shared<Vec>(random_vec(ys, 3270 + combo)), saf, true, mode));
      if (g.k < 7) continue;
      // Fused: y = relu(residual + (v - mean) * scale + beta). Each side rounds at most four values
      // and the scale twice, each within 2^-24 of a magnitude below |scale| (sum|x||w| + |mean|) +
      // |beta| + |residual|; the error of v passes through scaled by |scale|.
      auto res = std::make_shared<Vec>(random_vec(ys, 3300 + combo));
      auto gamma = std::make_shared<Vec>(random_vec(static_cast<std::size_t>(g.k), 3400 + combo, 0.5f, 1.5f));
      auto beta = std::make_shared<Vec>(random_vec(static_cast<std::size_t>(g.k), 3500 + combo));
      auto mean = std::make_shared<Vec>(random_vec(static_cast<std::size_t>(g.k), 3600 + combo));
      auto var = std::make_shared<Vec>(random_vec(static_cast<std::size_t>(g.k), 3700 + combo, 0.5f, 2.0f));
      const float eps = 1e-5f;
      cases.push_back({conv_name("conv2d_forward_fused", g) + tag,
                       [=] {
                         Dev d;
                         float* y = d.alloc<float>(ys);
                         gpu::ConvEpilogue e;
                         e.gamma = d.up(*gamma);
                         e.beta = d.up(*beta);
                         e.mean = d.up(*mean);
                         e.var = d.up(*var);
                         e.eps = eps;
                         e.residual = d.up(*res);
                         e.relu = true;
                         gpu::conv2d_forward_fused(g, d.up(*x), {d.up(w->buf.bytes), dst, saf}, e, y, nullptr, mode);
                         return Outputs{{"y", Dev::down(y, ys)}};
                       },
                       [=] {
                         Vec v(ys), va(ys), y(ys);
                         cpu::conv2d_forward(g, x->data(), w->view.data(), v.data());
                         cpu::conv2d_forward(g, abs_of(*x).data(), abs_of(w->view).data(), va.data());
                         const Expect ev = tc_summed(v, va, depth, mode);
                         const cpu::BnGeom bg{g.n, g.k, g.oh() * g.ow()};
                         cpu::batchnorm_forward_eval(bg, v.data(), gamma->data(), beta->data(), mean->data(),
                                                     var->data(), eps, y.data());
                         cpu::add_forward(static_cast<std::int64_t>(ys), res->data(), y.data(), y.data());
                         cpu::relu_forward(static_cast<std::int64_t>(ys), y.data(), y.data());
                         Expect e = exact(y);
                         const int ohw = g.oh() * g.ow();
                         for (std::size_t i = 0; i < ys; ++i) {
                           const std::size_t k = i / ohw % g.k;
                           const double scale = std::fabs((*gamma)[k]) / std::sqrt(static_cast<double>((*var)[k]) + eps);
                           const double tv = ev.tol[i] + saf_value_rel(saf) * va[i];
                           const double mag = scale * (va[i] + std::fabs((*mean)[k]) + tv) + std::fabs((*beta)[k]) +
                                              std::fabs((*res)[i]);
                           e.tol[i] = static_cast<float>(scale * tv * (1 + 8 * kU) + 12 * kU * mag * 1.0001);
                         }
                         return std::vector<Expect>{e};
                       }});
    }
    for (const LinearShape& sh : kLinears) {
      const int n = sh.n, in = sh.in, out = sh.out;
      const Storage st = kStorages[combo % 4];
      const Saf saf = kSafs[combo++ % kNumSafs];
      const bool bias = combo % 2 == 0;
      const std::size_t xs = static_cast<std::size_t>(n) * in, ws = static_cast<std::size_t>(out) * in;
      const std::string tag = " n" + std::to_string(n) + " in" + std::to_string(in) + " out" + std::to_string(out) +
                              mname + " " + st.dtype.name() + " " + saf_name(saf) +
                              (saf.nan == NanMode::zero ? "/nan0" : "") + (bias ? " bias" : "");
      auto w = std::make_shared<RawWeights>(make_weights(ws, st, saf, 3800 + combo));
      auto x = std::make_shared<Vec>(random_vec(xs, 3900 + combo));
      auto b = std::make_shared<Vec>(random_vec(static_cast<std::size_t>(out), 4000 + combo));
      const StorageFormat dst = st.dev;
      cases.push_back(linear_forward_case(n, in, out, tag, w, x, b, dst, saf, bias, mode));
      cases.push_back(linear_backward_data_case(
          n, in, out, tag, w, std::make_shared<Vec>(random_vec(static_cast<std::size_t>(n) * out, 4050 + combo)), dst,
          saf, mode));
      cases.push_back(linear_backward_weight_case(
          n, in, out, tag, std::make_shared<Vec>(random_vec(ws, 4060 + combo, -2.0f, 2.0f)), x,
          std::make_shared<Vec>(random_vec(static_cast<std::size_t>(n) * out, 4070 + combo)), saf, mode));
    }
  }
}

// Raw values with every special case a fault can produce: zeros, huge, inf, NaN.
Vec special_raw(std::size_t n, unsigned seed) {
  Vec v = random_vec(n, seed, -3.0f, 3.0f);
  const float specials[] = {0.0f, -0.0f, 1e30f, -1e30f, INFINITY, -INFINITY, NAN, 1e-40f};
  for (std::size_t i = 0; i < n; i += 7) v[i] = specials[(i / 7) % 8];
  return v;
}

void add_weight_view_cases(std::vector<Case>& cases) {
  const std::int64_t count = 1031;
  for (const Storage& st : kStorages)
    for (int si = 0; si < kNumSafs; ++si) {
      const Saf saf = kSafs[si];
      const Vec raw = special_raw(static_cast<std::size_t>(count), 1400 + si);
      auto buf = std::make_shared<safnet::StorageBuffer>(safnet::encode_storage(raw.data(), count, st.dtype));
      const StorageFormat dst = st.dev;
      const DType dt = st.dtype;
      cases.push_back({std::string("weight_view_load ") + dt.name() + " " + saf_name(saf) +
                           (saf.nan == NanMode::zero ? "/nan0" : ""),
                       [=] {
                         Dev d;
                         float* out = d.alloc<float>(static_cast<std::size_t>(count));
                         gpu::weight_view_load(saf, dst, d.up(buf->bytes), count, out, nullptr);
                         return Outputs{{"w", Dev::down(out, static_cast<std::size_t>(count))}};
                       },
                       [=] {
                         Vec out(static_cast<std::size_t>(count));
                         cpu::weight_view_load(saf, dt, buf->bytes.data(), count, out.data());
                         // The same SAFNET_HD code: exact on the simulator (same libm), within the
                         // math library's ulp bounds on a GPU.
                         Expect e = exact(out);
                         for (std::size_t i = 0; i < out.size(); ++i) e.tol[i] = static_cast<float>(saf_value_diff(saf, out[i]));
                         return std::vector<Expect>{e};
                       }});
    }
  for (int si = 0; si < kNumSafs; ++si) {
    const Saf saf = kSafs[si];
    auto raw = std::make_shared<Vec>(special_raw(static_cast<std::size_t>(count), 1500 + si));
    auto grad = std::make_shared<Vec>(random_vec(static_cast<std::size_t>(count), 1600 + si));
    cases.push_back({std::string("weight_grad_epilogue ") + saf_name(saf) + (saf.nan == NanMode::zero ? "/nan0" : ""),
                     [=] {
                       Dev d;
                       float* g = d.up(*grad);
                       gpu::weight_grad_epilogue(saf, d.up(*raw), count, g, nullptr);
                       return Outputs{{"grad", Dev::down(g, static_cast<std::size_t>(count))}};
                     },
                     [=] {
                       Vec g = *grad;
                       cpu::weight_grad_epilogue(saf, raw->data(), count, g.data());
                       Expect e = exact(g);  // on a GPU: tau' within saf_grad_diff, then one rounding
                       for (std::size_t i = 0; i < g.size(); ++i) {
                         const double ds = saf_grad_diff(saf, (*raw)[i]);
                         if (ds > 0) e.tol[i] = static_cast<float>(ds * std::fabs((*grad)[i]) + kU * std::fabs(g[i]));
                       }
                       return std::vector<Expect>{e};
                     }});
  }
}

void add_elementwise_cases(std::vector<Case>& cases) {
  for (const std::int64_t n : {std::int64_t{1}, std::int64_t{1000}, std::int64_t{70001}}) {
    auto a = std::make_shared<Vec>(special_raw(static_cast<std::size_t>(n), 1700));
    auto b = std::make_shared<Vec>(random_vec(static_cast<std::size_t>(n), 1701));
    const auto sz = static_cast<std::size_t>(n);
    const std::string tag = " n" + std::to_string(n);
    cases.push_back({"relu_forward" + tag,
                     [=] {
                       Dev d;
                       float* y = d.alloc<float>(sz);
                       gpu::relu_forward(n, d.up(*a), y, nullptr);
                       return Outputs{{"y", Dev::down(y, sz)}};
                     },
                     [=] {
                       Vec y(sz);
                       cpu::relu_forward(n, a->data(), y.data());
                       return std::vector<Expect>{exact(y)};
                     }});
    cases.push_back({"relu_backward" + tag,
                     [=] {
                       Dev d;
                       float* dx = d.alloc<float>(sz);
                       gpu::relu_backward(n, d.up(*a), d.up(*b), dx, nullptr);
                       return Outputs{{"dx", Dev::down(dx, sz)}};
                     },
                     [=] {
                       Vec dx(sz);
                       cpu::relu_backward(n, a->data(), b->data(), dx.data());
                       return std::vector<Expect>{exact(dx)};
                     }});
    cases.push_back({"add_forward" + tag,
                     [=] {
                       Dev d;
                       float* y = d.alloc<float>(sz);
                       gpu::add_forward(n, d.up(*a), d.up(*b), y, nullptr);
                       return Outputs{{"y", Dev::down(y, sz)}};
                     },
                     [=] {
                       Vec y(sz);
                       cpu::add_forward(n, a->data(), b->data(), y.data());
                       return std::vector<Expect>{exact(y)};
                     }});
  }
}

void add_shortcut_pool_cases(std::vector<Case>& cases) {
  struct Sc {
    int n, c, h, w, stride, k;
  };
  for (const Sc s : {Sc{1, 3, 7, 5, 2, 7}, Sc{2, 4, 8, 8, 2, 8}, Sc{3, 2, 5, 6, 1, 2}, Sc{2, 5, 9, 9, 3, 9}}) {
    const int oh = (s.h + s.stride - 1) / s.stride, ow = (s.w + s.stride - 1) / s.stride;
    const std::size_t xs = static_cast<std::size_t>(s.n) * s.c * s.h * s.w;
    const std::size_t ys = static_cast<std::size_t>(s.n) * s.k * oh * ow;
    auto x = std::make_shared<Vec>(random_vec(xs, 1800 + s.c));
    auto dy = std::make_shared<Vec>(random_vec(ys, 1900 + s.c));
    const std::string tag = " n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " " + std::to_string(s.h) +
                            "x" + std::to_string(s.w) + " s" + std::to_string(s.stride) + " k" + std::to_string(s.k);
    cases.push_back({"shortcut_a_forward" + tag,
                     [=] {
                       Dev d;
                       float* y = d.alloc<float>(ys);
                       gpu::shortcut_a_forward(s.n, s.c, s.h, s.w, s.stride, s.k, d.up(*x), y, nullptr);
                       return Outputs{{"y", Dev::down(y, ys)}};
                     },
                     [=] {
                       Vec y(ys);
                       cpu::shortcut_a_forward(s.n, s.c, s.h, s.w, s.stride, s.k, x->data(), y.data());
                       return std::vector<Expect>{exact(y)};
                     }});
    cases.push_back({"shortcut_a_backward" + tag,
                     [=] {
                       Dev d;
                       float* dx = d.alloc<float>(xs);
                       gpu::shortcut_a_backward(s.n, s.c, s.h, s.w, s.stride, s.k, d.up(*dy), dx, nullptr);
                       return Outputs{{"dx", Dev::down(dx, xs)}};
                     },
                     [=] {
                       Vec dx(xs);
                       cpu::shortcut_a_backward(s.n, s.c, s.h, s.w, s.stride, s.k, dy->data(), dx.data());
                       return std::vector<Expect>{exact(dx)};
                     }});
  }
  struct Gp {
    int n, c, hw;
  };
  for (const Gp p : {Gp{1, 1, 1}, Gp{2, 3, 64}, Gp{5, 70, 49}}) {
    const std::size_t xs = static_cast<std::size_t>(p.n) * p.c * p.hw, ys = static_cast<std::size_t>(p.n) * p.c;
    auto x = std::make_shared<Vec>(random_vec(xs, 2000 + p.c));
    auto dy = std::make_shared<Vec>(random_vec(ys, 2100 + p.c));
    const std::string tag = " n" + std::to_string(p.n) + " c" + std::to_string(p.c) + " hw" + std::to_string(p.hw);
    cases.push_back({"global_avgpool_forward" + tag,
                     [=] {
                       Dev d;
                       float* y = d.alloc<float>(ys);
                       gpu::global_avgpool_forward(p.n, p.c, p.hw, d.up(*x), y, nullptr);
                       return Outputs{{"y", Dev::down(y, ys)}};
                     },
                     [=] {
                       Vec y(ys), ya(ys);
                       cpu::global_avgpool_forward(p.n, p.c, p.hw, x->data(), y.data());
                       cpu::global_avgpool_forward(p.n, p.c, p.hw, abs_of(*x).data(), ya.data());
                       Expect e = summed(y, ya, p.hw);
                       for (std::size_t i = 0; i < ys; ++i) e.tol[i] += static_cast<float>(2 * kU * std::fabs(y[i]));
                       return std::vector<Expect>{e};  // plus the rounding of the scaling
                     }});
    cases.push_back({"global_avgpool_backward" + tag,
                     [=] {
                       Dev d;
                       float* dx = d.alloc<float>(xs);
                       gpu::global_avgpool_backward(p.n, p.c, p.hw, d.up(*dy), dx, nullptr);
                       return Outputs{{"dx", Dev::down(dx, xs)}};
                     },
                     [=] {
                       Vec dx(xs);
                       cpu::global_avgpool_backward(p.n, p.c, p.hw, dy->data(), dx.data());
                       return std::vector<Expect>{exact(dx)};
                     }});
  }
  for (const cpu::PoolGeom g : {cpu::PoolGeom{1, 2, 7, 7, 3, 2, 1}, cpu::PoolGeom{2, 3, 9, 6, 2, 2, 0},
                                cpu::PoolGeom{2, 2, 5, 5, 3, 1, 1}, cpu::PoolGeom{1, 3, 8, 8, 3, 3, 1}}) {
    const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.h * g.w;
    const std::size_t ys = static_cast<std::size_t>(g.n) * g.c * g.oh() * g.ow();
    // Few distinct values, so windows hold ties, plus a NaN: the first max / first NaN must win.
    auto x = std::make_shared<Vec>(random_vec(xs, 2200 + g.h));
    for (float& v : *x) v = std::round(v * 3.0f);
    (*x)[xs / 3] = NAN;
    auto dy = std::make_shared<Vec>(random_vec(ys, 2300 + g.h));
    const std::string tag = " n" + std::to_string(g.n) + " " + std::to_string(g.h) + "x" + std::to_string(g.w) +
                            " k" + std::to_string(g.k) + " s" + std::to_string(g.stride) + " p" + std::to_string(g.pad);
    cases.push_back({"maxpool_forward+backward" + tag,
                     [=] {
                       Dev d;
                       float* y = d.alloc<float>(ys);
                       float* dx = d.alloc<float>(xs);
                       auto* am = d.alloc<std::int32_t>(ys);
                       gpu::maxpool_forward(g, d.up(*x), y, am, nullptr);
                       gpu::maxpool_backward(g, d.up(*dy), am, dx, nullptr);
                       return Outputs{{"y", Dev::down(y, ys)}, {"argmax", Dev::down(am, ys)}, {"dx", Dev::down(dx, xs)}};
                     },
                     [=] {
                       Vec y(ys), dx(xs);
                       std::vector<std::int32_t> am(ys);
                       cpu::maxpool_forward(g, x->data(), y.data(), am.data());
                       cpu::maxpool_backward(g, dy->data(), am.data(), dx.data());
                       return std::vector<Expect>{exact(y), exact(Vec(am.begin(), am.end())), exact(dx)};
                     }});
  }
}

void add_batchnorm_cases(std::vector<Case>& cases) {
  for (const cpu::BnGeom g : {cpu::BnGeom{1, 3, 2}, cpu::BnGeom{4, 5, 49}, cpu::BnGeom{3, 2, 300}, cpu::BnGeom{70, 3, 1}}) {
    const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.hw, cs = static_cast<std::size_t>(g.c);
    // An offset mean, so the statistics are not trivially near zero.
    auto x = std::make_shared<Vec>(random_vec(xs, 2400 + g.hw, 0.5f, 2.5f));
    auto dy = std::make_shared<Vec>(random_vec(xs, 2500 + g.hw));
    auto gamma = std::make_shared<Vec>(random_vec(cs, 2600, 0.5f, 1.5f));
    auto beta = std::make_shared<Vec>(random_vec(cs, 2700));
    auto rm0 = std::make_shared<Vec>(random_vec(cs, 2800));
    auto rv0 = std::make_shared<Vec>(random_vec(cs, 2900, 0.5f, 2.0f));
    const float eps = 1e-5f, mom = 0.1f;
    const std::string tag = " n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " hw" + std::to_string(g.hw);
    cases.push_back({"batchnorm_forward_train+backward" + tag,
                     [=] {
                       Dev d;
                       float *y = d.alloc<float>(xs), *mean = d.alloc<float>(cs), *inv = d.alloc<float>(cs);
                       float *rm = d.up(*rm0), *rv = d.up(*rv0), *dx = d.alloc<float>(xs);
                       float *dgm = d.alloc<float>(cs), *dbt = d.alloc<float>(cs);
                       const float* xd = d.up(*x);
                       const float* gd = d.up(*gamma);
                       gpu::batchnorm_forward_train(g, xd, gd, d.up(*beta), eps, mom, y, mean, inv, rm, rv, nullptr);
                       gpu::batchnorm_backward(g, xd, d.up(*dy), gd, mean, inv, dx, dgm, dbt, nullptr);
                       return Outputs{{"y", Dev::down(y, xs)},     {"mean", Dev::down(mean, cs)},
                                      {"invstd", Dev::down(inv, cs)}, {"running_mean", Dev::down(rm, cs)},
                                      {"running_var", Dev::down(rv, cs)}, {"dx", Dev::down(dx, xs)},
                                      {"dgamma", Dev::down(dgm, cs)},  {"dbeta", Dev::down(dbt, cs)}};
                     },
                     [=] {
                       Vec y(xs), mean(cs), inv(cs), rm = *rm0, rv = *rv0, dx(xs), dgm(cs), dbt(cs);
                       cpu::batchnorm_forward_train(g, x->data(), gamma->data(), beta->data(), eps, mom, y.data(),
                                                    mean.data(), inv.data(), rm.data(), rv.data());
                       cpu::batchnorm_backward(g, x->data(), dy->data(), gamma->data(), mean.data(), inv.data(),
                                               dx.data(), dgm.data(), dbt.data());
                       // Error bounds: both sides sum `count` f32 terms per channel in different orders.
                       const double m = static_cast<double>(g.n) * g.hw, gm = 2 * m * kU;
                       Expect ey = exact(y), emean = exact(mean), einv = exact(inv), erm = exact(rm), erv = exact(rv);
                       Expect edx = exact(dx), edg = exact(dgm), edb = exact(dbt);
                       for (int c = 0; c < g.c; ++c) {
                         double sx = 0, sdy = 0, sdyxc = 0, var = 0;
                         for (int n = 0; n < g.n; ++n)
                           for (int i = 0; i < g.hw; ++i) {
                             const std::size_t e = (static_cast<std::size_t>(n) * g.c + c) * g.hw + i;
                             const double xc = (*x)[e] - mean[c];
                             sx += std::fabs((*x)[e]);
                             sdy += std::fabs((*dy)[e]);
                             sdyxc += std::fabs((*dy)[e] * xc);
                             var += xc * xc;
                           }
                         var /= m;
                         const double dmu = gm * sx / m + 2 * kU * std::fabs(mean[c]);
                         const double dinv_rel = gm + 8 * kU;  // a relative error in var halves under the sqrt
                         const double iv = inv[c], ga = std::fabs((*gamma)[c]);
                         emean.tol[c] = static_cast<float>(dmu);
                         einv.tol[c] = static_cast<float>(iv * dinv_rel);
                         erm.tol[c] = static_cast<float>(mom * dmu + 4 * kU * (std::fabs(rm[c]) + std::fabs(mean[c])));
                         erv.tol[c] = static_cast<float>(mom * var * m / (m - 1) * (gm + 8 * kU) + 4 * kU * std::fabs(rv[c]));
                         const double ddb = gm * sdy, ddg = iv * (gm * sdyxc + dinv_rel * sdyxc) + 2 * kU * std::fabs(dgm[c]);
                         edb.tol[c] = static_cast<float>(ddb + 2 * kU * std::fabs(dbt[c]));
                         edg.tol[c] = static_cast<float>(ddg);
                         const double k1 = ga * iv, a2 = k1 * iv * std::fabs(dgm[c]) / m;
                         for (int n = 0; n < g.n; ++n)
                           for (int i = 0; i < g.hw; ++i) {
                             const std::size_t e = (static_cast<std::size_t>(n) * g.c + c) * g.hw + i;
                             const double xc = std::fabs((*x)[e] - mean[c]);
                             ey.tol[e] = static_cast<float>(ga * iv * (dmu + xc * dinv_rel) +
                                                            8 * kU * (std::fabs(y[e]) + std::fabs((*beta)[c])));
                             // dx = a1 dy + a2 (x - mean) + a3, each coefficient carrying its inputs' errors.
                             const double da1 = k1 * dinv_rel, da3 = k1 * (ddb + dinv_rel * sdy) / m;
                             const double da2 = k1 * iv * (ddg + 2 * dinv_rel * std::fabs(dgm[c])) / m;
                             edx.tol[e] = static_cast<float>(da1 * std::fabs((*dy)[e]) + da2 * xc + a2 * dmu + da3 +
                                                             8 * kU * (k1 * std::fabs((*dy)[e]) + a2 * xc +
                                                                       k1 * sdy / m + std::fabs(dx[e])));
                           }
                       }
                       return std::vector<Expect>{ey, emean, einv, erm, erv, edx, edg, edb};
                     }});
    cases.push_back({"batchnorm_forward_eval" + tag,
                     [=] {
                       Dev d;
                       float* y = d.alloc<float>(xs);
                       gpu::batchnorm_forward_eval(g, d.up(*x), d.up(*gamma), d.up(*beta), d.up(*rm0), d.up(*rv0), eps,
                                                   y, nullptr);
                       return Outputs{{"y", Dev::down(y, xs)}};
                     },
                     [=] {
                       Vec y(xs);
                       cpu::batchnorm_forward_eval(g, x->data(), gamma->data(), beta->data(), rm0->data(), rv0->data(),
                                                   eps, y.data());
                       Expect e = exact(y);  // same formula; allow a fused multiply-add's difference
                       for (std::size_t i = 0; i < xs; ++i) e.tol[i] = static_cast<float>(4 * kU * (std::fabs(y[i]) + 4.0));
                       return std::vector<Expect>{e};
                     }});
  }
}

void add_softmax_cases(std::vector<Case>& cases) {
  struct Sm {
    int n, k;
    float smoothing;
  };
  for (const Sm s : {Sm{1, 1, 0.0f}, Sm{7, 10, 0.1f}, Sm{300, 13, 0.0f}, Sm{3, 1000, 0.2f}}) {
    const std::size_t zs = static_cast<std::size_t>(s.n) * s.k;
    auto z = std::make_shared<Vec>(random_vec(zs, 3000 + s.k, -4.0f, 4.0f));
    std::mt19937 rng(3100 + s.k);
    auto labels = std::make_shared<std::vector<std::int32_t>>(static_cast<std::size_t>(s.n));
    for (auto& l : *labels) l = static_cast<std::int32_t>(rng() % s.k);
    const float dloss = 0.75f;
    const std::string tag = " n" + std::to_string(s.n) + " k" + std::to_string(s.k);
    cases.push_back({"softmax_ce_forward+backward" + tag,
                     [=] {
                       Dev d;
                       float *p = d.alloc<float>(zs), *loss = d.alloc<float>(1), *dz = d.alloc<float>(zs);
                       const std::int32_t* ld = d.up(*labels);
                       gpu::softmax_ce_forward(s.n, s.k, d.up(*z), ld, s.smoothing, p, loss, nullptr);
                       gpu::softmax_ce_backward(s.n, s.k, p, ld, s.smoothing, dloss, dz, nullptr);
                       return Outputs{{"probs", Dev::down(p, zs)}, {"loss", Dev::down(loss, 1)}, {"dlogits", Dev::down(dz, zs)}};
                     },
                     [=] {
                       Vec p(zs), dz(zs);
                       const float loss = cpu::softmax_ce_forward(s.n, s.k, z->data(), labels->data(), s.smoothing, p.data());
                       cpu::softmax_ce_backward(s.n, s.k, p.data(), labels->data(), s.smoothing, dloss, dz.data());
                       // Row losses (each < 20 here) are summed in double in different orders.
                       Expect el{{loss}, {static_cast<float>(2 * kU * std::fabs(loss) + s.n * 20.0 * 0x1p-52)}};
                       return std::vector<Expect>{exact(p), el, exact(dz)};  // per row: the same double math
                     }});
  }
}

// Three optimizer steps on the device against safnet::Optimizer (host/optim.cpp) on the same data.
void add_optim_cases(std::vector<Case>& cases) {
  struct Opt {
    const char* kind;
    float momentum;
    bool nesterov;
    float wd;
  };
  const std::int64_t n = 1000;
  const auto sz = static_cast<std::size_t>(n);
  const float lr = 0.05f;
  const int steps = 3;
  for (const Opt o : {Opt{"sgd", 0.9f, false, 5e-4f}, Opt{"sgd", 0.9f, true, 1e-4f}, Opt{"sgd", 0.0f, false, 0.0f},
                      Opt{"adamw", 0, false, 0.01f}}) {
    auto w0 = std::make_shared<Vec>(random_vec(sz, 3200));
    std::vector<Vec> grads;
    for (int s = 0; s < steps; ++s) grads.push_back(random_vec(sz, 3300 + s));
    const std::string name = std::string(o.kind) + "_update mu" + std::to_string(o.momentum) +
                             (o.nesterov ? " nesterov" : "") + " wd" + std::to_string(o.wd);
    cases.push_back({name,
                     [=] {
                       Dev d;
                       float* w = d.up(*w0);
                       float* s1 = d.up(Vec(sz, 0.0f));
                       float* s2 = d.up(Vec(sz, 0.0f));
                       for (int s = 0; s < steps; ++s) {
                         const float* g = d.up(grads[static_cast<std::size_t>(s)]);
                         if (std::string(o.kind) == "sgd")
                           gpu::sgd_update(n, w, g, s1, lr, o.momentum, o.nesterov, o.wd, nullptr);
                         else
                           gpu::adamw_update(n, w, g, s1, s2, lr, 0.9f, 0.999f, 1e-8f, o.wd, s + 1, nullptr);
                       }
                       return Outputs{{"w", Dev::down(w, sz)}};
                     },
                     [=] {
                       safnet::ParamStore store;
                       safnet::Tensor& w = store.add("w", safnet::Tensor({n}), safnet::ParamRole::weight,
                                                     safnet::LayerKind::linear);
                       std::memcpy(w.data<float>(), w0->data(), sz * sizeof(float));
                       safnet::OptimConfig cfg;
                       cfg.kind = o.kind;
                       cfg.momentum = o.momentum;
                       cfg.nesterov = o.nesterov;
                       cfg.weight_decay = o.wd;
                       safnet::Optimizer opt(cfg);
                       safnet::Tensor g({n});
                       for (int s = 0; s < steps; ++s) {
                         std::memcpy(g.data<float>(), grads[static_cast<std::size_t>(s)].data(), sz * sizeof(float));
                         opt.step(store, {{"w", &g}}, lr);
                       }
                       const float* wf = store.at("w").value.data<float>();
                       // The same per-element formula: allow a few roundings per step in case of FMA.
                       Vec want(wf, wf + sz), tol(sz);
                       for (std::size_t i = 0; i < sz; ++i) tol[i] = static_cast<float>(16 * steps * kU * (std::fabs(want[i]) + lr * 4));
                       return std::vector<Expect>{{want, tol}};
                     }});
  }
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  add_elementwise_cases(cases);
  add_shortcut_pool_cases(cases);
  add_batchnorm_cases(cases);
  add_softmax_cases(cases);
  add_weight_view_cases(cases);
  add_optim_cases(cases);
  add_linear_cases(cases);
  add_conv_cases(cases);
  add_tensor_core_cases(cases);
  return cases;
}

// SAFNET_CONFORMANCE_CASES=a,b,...: only the cases whose name contains one of the words (the
// compute-sanitizer runs of tools/gpu_check.sh take a subset); unset or empty: every case.
bool selected(const std::string& name) {
  const char* env = std::getenv("SAFNET_CONFORMANCE_CASES");
  if (env == nullptr || *env == '\0') return true;
  std::stringstream words(env);
  for (std::string w; std::getline(words, w, ',');)
    if (!w.empty() && name.find(w) != std::string::npos) return true;
  return false;
}

bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Conformance, EveryKernelMatchesTheCpuReference) {
  SAFNET_REQUIRE_DEVICE();
  std::printf("[conformance] device: %s\n", safnet::test::device_name().c_str());
  const std::uint64_t saved = safnet::test::schedule_seed();
  int checked = 0, failed_cases = 0;
  for (const Case& c : all_cases()) {
    if (!selected(c.name)) continue;
    SCOPED_TRACE(c.name);
    safnet::test::set_schedule_seed(1);
    const Outputs first = c.device();
    safnet::test::set_schedule_seed(0x9e3779b97f4a7c15ull);
    const Outputs second = c.device();
    const std::vector<Expect> ref = c.reference();
    ASSERT_EQ(first.size(), ref.size()) << c.name;
    ASSERT_EQ(second.size(), ref.size()) << c.name;
    int bad = 0;
    for (std::size_t o = 0; o < first.size(); ++o) {
      const auto& [name, got] = first[o];
      EXPECT_TRUE(same_bits(got, second[o].second)) << c.name << ": output " << name << " differs between schedules";
      ASSERT_EQ(got.size(), ref[o].want.size()) << c.name << ": output " << name;
      for (std::size_t i = 0; i < got.size(); ++i) {
        const float w = ref[o].want[i], g = got[i];
        const bool ok = std::isnan(w) ? std::isnan(g) : (g == w || std::fabs(static_cast<double>(g) - w) <= ref[o].tol[i]);
        if (!ok && ++bad <= 5)
          ADD_FAILURE() << c.name << ": " << name << "[" << i << "] = " << g << ", CPU " << w << ", |diff| "
                        << std::fabs(static_cast<double>(g) - w) << " > tol " << ref[o].tol[i];
      }
    }
    failed_cases += bad > 0;
    ++checked;
  }
  safnet::test::set_schedule_seed(saved);
  if (checked == 0) ADD_FAILURE() << "no case name contains a word of SAFNET_CONFORMANCE_CASES=" << std::getenv("SAFNET_CONFORMANCE_CASES");
  std::printf("[conformance] %d cases on %s, %d failed\n", checked, safnet::test::device_name().c_str(), failed_cases);
}

// Launchers reject bad shapes before launching anything.
TEST(Conformance, LaunchersRejectBadArguments) {
  EXPECT_THROW(gpu::relu_forward(-1, nullptr, nullptr, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::conv2d_forward({1, 1, 2, 2, 1, 3, 3, 1, 0}, nullptr, {}, nullptr, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::conv2d_forward({1, 1, 4, 4, 1, 3, 3, 0, 0}, nullptr, {}, nullptr, nullptr), gpu::KernelArgError);
  gpu::WeightView bad_fixed{nullptr, {StorageFormat::Kind::fixed, 8}, {}};
  EXPECT_THROW(gpu::linear_forward(1, 1, 1, nullptr, bad_fixed, nullptr, nullptr, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::linear_backward_weight(0, 1, 1, nullptr, nullptr, {}, nullptr, nullptr, nullptr),
               gpu::KernelArgError);
  EXPECT_THROW(gpu::shortcut_a_forward(1, 3, 4, 4, 2, 4, nullptr, nullptr, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::maxpool_forward({1, 1, 4, 4, 3, 1, 2}, nullptr, nullptr, nullptr, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::batchnorm_forward_train({1, 2, 1}, nullptr, nullptr, nullptr, 1e-5f, 0.1f, nullptr, nullptr,
                                            nullptr, nullptr, nullptr, nullptr),
               gpu::KernelArgError);
  EXPECT_THROW(gpu::softmax_ce_forward(2, 3, nullptr, nullptr, 1.5f, nullptr, nullptr, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::adamw_update(1, nullptr, nullptr, nullptr, nullptr, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 0, nullptr),
               gpu::KernelArgError);
  try {
    gpu::global_avgpool_forward(0, 1, 1, nullptr, nullptr, nullptr);
    ADD_FAILURE() << "no error";
  } catch (const gpu::KernelArgError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda/kernels/pool.cu"), std::string::npos) << e.what();
  }
}

}  // namespace
