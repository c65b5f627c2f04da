// Naive loop twins of the CPU kernels, templated on the scalar so float64 versions can be
// differentiated by central differences; plus the random data, tolerance and comparison helpers.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "cuda/saf.h"
#include "host/cpu/ops.h"

namespace safnet::cpu::ref {

using Vec = std::vector<double>;

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

inline Vec to_double(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }

// Unit roundoff of float: the relative error of one correctly rounded f32 operation.
inline constexpr double kU32 = std::numeric_limits<float>::epsilon() / 2;

// Worst-case error of a float sum of `terms` rounded terms whose magnitudes add up to `abs_sum`
// (Higham's gamma_n = n u / (1 - n u)), in any summation order and with or without FMA.
inline double f32_sum_bound(long terms, double abs_sum) {
  const double nu = static_cast<double>(terms + 1) * kU32;
  return nu / (1.0 - nu) * abs_sum;
}

inline double max_abs(const Vec& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Checks |got - want| <= tol[i] element by element and reports the first few mismatches.
inline void expect_close(const std::vector<float>& got, const Vec& want, const Vec& tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_EQ(tol.size(), want.size()) << what;
  int bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= tol[i])) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << " want " << want[i] << " err " << err << " tol "
                    << tol[i];
      if (++bad == 5) return;
    }
  }
}

inline void expect_close(const std::vector<float>& got, const Vec& want, double tol, const char* what) {
  expect_close(got, want, Vec(want.size(), tol), what);
}

// Central differences of a scalar function of v, in float64, at every coordinate.
inline Vec fd_gradient(const std::function<double(const Vec&)>& f, Vec v, double h) {
  Vec g(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double x = v[i];
    v[i] = x + h;
    const double up = f(v);
    v[i] = x - h;
    const double down = f(v);
    v[i] = x;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

// Central differences at the listed coordinates only (for inputs too large to sweep).
inline Vec fd_gradient_at(const std::function<double(const Vec&)>& f, Vec v, double h,
                          const std::vector<std::size_t>& at) {
  Vec g(at.size());
  for (std::size_t j = 0; j < at.size(); ++j) {
    const double x = v[at[j]];
    v[at[j]] = x + h;
    const double up = f(v);
    v[at[j]] = x - h;
    const double down = f(v);
    v[at[j]] = x;
    g[j] = (up - down) / (2 * h);
  }
  return g;
}

// `count` coordinates spread over [0, size), including both ends.
inline std::vector<std::size_t> spread_indices(std::size_t size, std::size_t count) {
  std::vector<std::size_t> at;
  for (std::size_t j = 0; j < count; ++j) at.push_back(j * (size - 1) / (count - 1));
  return at;
}

inline double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline Vec abs_of(Vec v) {
  for (double& x : v) x = std::fabs(x);
  return v;
}

// ---- naive forwards ----

template <typename T>
std::vector<T> conv2d(const ConvGeom& g, const std::vector<T>& x, const std::vector<T>& w) {
  const int oh = g.oh(), ow = g.ow();
  std::vector<T> y(static_cast<std::size_t>(g.n) * g.k * oh * ow, T(0));
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          T acc = 0;
          for (int c = 0; c < g.c; ++c)
            for (int r = 0; r < g.r; ++r)
              for (int s = 0; s < g.s; ++s) {
                const int h = i * g.stride - g.pad + r, v = j * g.stride - g.pad + s;
                if (h < 0 || h >= g.h || v < 0 || v >= g.w) continue;
                acc += x[((static_cast<std::size_t>(n) * g.c + c) * g.h + h) * g.w + v] *
                       w[((static_cast<std::size_t>(k) * g.c + c) * g.r + r) * g.s + s];
              }
          y[((static_cast<std::size_t>(n) * g.k + k) * oh + i) * ow + j] = acc;
        }
  return y;
}

template <typename T>
std::vector<T> linear(int n, int in, int out, const std::vector<T>& x, const std::vector<T>& w,
                      const std::vector<T>* b) {
  std::vector<T> y(static_cast<std::size_t>(n) * out);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) {
      T acc = b ? (*b)[o] : T(0);
      for (int j = 0; j < in; ++j) acc += x[static_cast<std::size_t>(i) * in + j] * w[static_cast<std::size_t>(o) * in + j];
      y[static_cast<std::size_t>(i) * out + o] = acc;
    }
  return y;
}

// Training-mode batch norm; optionally returns the batch mean and biased variance per channel.
template <typename T>
std::vector<T> batchnorm_train(const BnGeom& g, const std::vector<T>& x, const std::vector<T>& gamma,
                               const std::vector<T>& beta, T eps, std::vector<T>* mean_out = nullptr,
                               std::vector<T>* var_out = nullptr) {
  std::vector<T> y(x.size());
  const T count = static_cast<T>(g.n) * g.hw;
  for (int c = 0; c < g.c; ++c) {
    T sum = 0, sq = 0;
    for (int n = 0; n < g.n; ++n)
      for (int i = 0; i < g.hw; ++i) sum += x[(static_cast<std::size_t>(n) * g.c + c) * g.hw + i];
    const T mean = sum / count;
    for (int n = 0; n < g.n; ++n)
      for (int i = 0; i < g.hw; ++i) {
        const T d = x[(static_cast<std::size_t>(n) * g.c + c) * g.hw + i] - mean;
        sq += d * d;
      }
    const T var = sq / count;
    if (mean_out) (*mean_out)[c] = mean;
    if (var_out) (*var_out)[c] = var;
    for (int n = 0; n < g.n; ++n)
      for (int i = 0; i < g.hw; ++i) {
        const std::size_t at = (static_cast<std::size_t>(n) * g.c + c) * g.hw + i;
        y[at] = (x[at] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
      }
  }
  return y;
}

template <typename T>
std::vector<T> shortcut_a(int n, int c, int h, int w, int stride, int k, const std::vector<T>& x) {
  const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, pad = (k - c) / 2;
  std::vector<T> y(static_cast<std::size_t>(n) * k * oh * ow, T(0));
  for (int i = 0; i < n; ++i)
    for (int ch = 0; ch < c; ++ch)
      for (int a = 0; a < oh; ++a)
        for (int b = 0; b < ow; ++b)
          y[((static_cast<std::size_t>(i) * k + ch + pad) * oh + a) * ow + b] =
              x[((static_cast<std::size_t>(i) * c + ch) * h + a * stride) * w + b * stride];
  return y;
}

template <typename T>
std::vector<T> maxpool(const PoolGeom& g, const std::vector<T>& x, std::vector<std::int32_t>* argmax = nullptr) {
  const int oh = g.oh(), ow = g.ow();
  std::vector<T> y(static_cast<std::size_t>(g.n) * g.c * oh * ow);
  if (argmax) argmax->assign(y.size(), -1);
  for (int p = 0; p < g.n * g.c; ++p)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        T best = -std::numeric_limits<T>::infinity();
        int at = -1;
        for (int a = 0; a < g.k; ++a)
          for (int b = 0; b < g.k; ++b) {
            const int h = i * g.stride - g.pad + a, v = j * g.stride - g.pad + b;
            if (h < 0 || h >= g.h || v < 0 || v >= g.w) continue;
            const T val = x[static_cast<std::size_t>(p) * g.h * g.w + h * g.w + v];
            if (at < 0 || val > best) {
              best = val;
              at = h * g.w + v;
            }
          }
        const std::size_t o = (static_cast<std::size_t>(p) * oh + i) * ow + j;
        y[o] = best;
        if (argmax) (*argmax)[o] = at;
      }
  return y;
}

// Mean label-smoothed softmax cross-entropy, computed directly from its definition.
inline double softmax_ce(int n, int k, const Vec& z, const std::vector<std::int32_t>& labels, double eps) {
  double total = 0.0;
  for (int i = 0; i < n; ++i) {
    double m = -std::numeric_limits<double>::infinity();
    for (int j = 0; j < k; ++j) m = std::max(m, z[static_cast<std::size_t>(i) * k + j]);
    double s = 0.0;
    for (int j = 0; j < k; ++j) s += std::exp(z[static_cast<std::size_t>(i) * k + j] - m);
    for (int j = 0; j < k; ++j) {
      const double t = (1.0 - eps) * (j == labels[i]) + eps / k;
      total -= t * (z[static_cast<std::size_t>(i) * k + j] - m - std::log(s));
    }
  }
  return total / n;
}

// ---- SAFs in float64 ----

inline double saf_value(const Saf& s, double x) {
  switch (s.kind) {
    case SafKind::none: return x;
    case SafKind::tanh: return std::tanh(x);
    case SafKind::tanh_c: return std::tanh(s.c * x);
    case SafKind::softsign: return std::isinf(x) ? std::copysign(1.0, x) : x / (1.0 + std::fabs(x));
    case SafKind::arctan: return std::atan(x);
    case SafKind::arctan2pi: return 2.0 / M_PI * std::atan(x);
  }
  return x;
}

inline std::vector<Saf> all_safs() {
  return {Saf{SafKind::none}, Saf{SafKind::tanh}, Saf{SafKind::tanh_c, 0.5f}, Saf{SafKind::softsign},
          Saf{SafKind::arctan}, Saf{SafKind::arctan2pi}};
}

}  // namespace safnet::cpu::ref
