// Batch normalisation over (N, HW) per channel: one thread per channel, so each channel's sums
// run in one fixed order (float within an image's plane, double across images) on any thread count.
#include <cmath>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {

namespace {

void check_geom(const BnGeom& g, const char* op) {
  if (g.n < 1 || g.c < 1 || g.hw < 1)
    fail("host/cpu/batchnorm.cpp: ", op, ": bad geometry n=", g.n, " c=", g.c, " hw=", g.hw);
}

long plane(const BnGeom& g, int n, int c) { return (static_cast<long>(n) * g.c + c) * g.hw; }

}  // namespace

void batchnorm_forward_train(const BnGeom& g, const float* x, const float* gamma, const float* beta, float eps,
                             float momentum, float* y, float* mean, float* invstd, float* running_mean,
                             float* running_var) {
  check_geom(g, "batchnorm_forward_train");
  const long count = static_cast<long>(g.n) * g.hw;
  if (count < 2) fail("host/cpu/batchnorm.cpp: batchnorm_forward_train: needs more than one value per channel");
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.c; ++c) {
    double sum = 0.0;
    for (int n = 0; n < g.n; ++n) {
      const float* p = x + plane(g, n, c);  // (HW)
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int i = 0; i < g.hw; ++i) acc += p[i];
      sum += acc;
    }
    const double mu = sum / static_cast<double>(count);
    const float muf = static_cast<float>(mu);
    // Second pass around the mean: no cancellation, unlike E[x^2] - E[x]^2.
    double sq = 0.0;
    for (int n = 0; n < g.n; ++n) {
      const float* p = x + plane(g, n, c);  // (HW)
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int i = 0; i < g.hw; ++i) acc += (p[i] - muf) * (p[i] - muf);
      sq += acc;
    }
    const double var = sq / static_cast<double>(count);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    mean[c] = muf;
    invstd[c] = inv;
    if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * muf;
    if (running_var)
      running_var[c] = (1.0f - momentum) * running_var[c] +
                       momentum * static_cast<float>(var * static_cast<double>(count) / static_cast<double>(count - 1));
    const float scale = gamma[c] * inv, shift = beta[c];
    for (int n = 0; n < g.n; ++n) {
      const float* p = x + plane(g, n, c);
      float* q = y + plane(g, n, c);
#pragma omp simd
      for (int i = 0; i < g.hw; ++i) q[i] = (p[i] - muf) * scale + shift;
    }
  }
}

void batchnorm_forward_eval(const BnGeom& g, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float eps, float* y) {
  check_geom(g, "batchnorm_forward_eval");
  const long planes = static_cast<long>(g.n) * g.c;
#pragma omp parallel for schedule(static) if (planes * g.hw > kParallelMin)
  for (long pl = 0; pl < planes; ++pl) {
    const int c = static_cast<int>(pl % g.c);
    const float mu = running_mean[c];
    const float scale = bn_eval_scale(gamma[c], running_var[c], eps);
    const float shift = beta[c];
    const float* p = x + pl * g.hw;
    float* q = y + pl * g.hw;
#pragma omp simd
    for (int i = 0; i < g.hw; ++i) q[i] = (p[i] - mu) * scale + shift;
  }
}

void batchnorm_backward(const BnGeom& g, const float* x, const float* dy, const float* gamma, const float* mean,
                        const float* invstd, float* dx, float* dgamma, float* dbeta) {
  check_geom(g, "batchnorm_backward");
  const double count = static_cast<double>(g.n) * g.hw;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < g.c; ++c) {
    const float mu = mean[c], inv = invstd[c];
    double sum_dy = 0.0, sum_dy_xc = 0.0;  // sum dy, sum dy (x - mean)
    for (int n = 0; n < g.n; ++n) {
      const float* p = x + plane(g, n, c);
      const float* d = dy + plane(g, n, c);
      float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
      for (int i = 0; i < g.hw; ++i) {
        a += d[i];
        b += d[i] * (p[i] - mu);
      }
      sum_dy += a;
      sum_dy_xc += b;
    }
    const double dg = sum_dy_xc * inv;
    dbeta[c] = static_cast<float>(sum_dy);
    dgamma[c] = static_cast<float>(dg);
    // dx = gamma inv (dy - dbeta / M - xhat dgamma / M), xhat = (x - mean) inv
    const double k1 = static_cast<double>(gamma[c]) * inv;
    const float a1 = static_cast<float>(k1);
    const float a2 = static_cast<float>(-k1 * inv * dg / count);
    const float a3 = static_cast<float>(-k1 * sum_dy / count);
    for (int n = 0; n < g.n; ++n) {
      const float* p = x + plane(g, n, c);
      const float* d = dy + plane(g, n, c);
      float* q = dx + plane(g, n, c);
#pragma omp simd
      for (int i = 0; i < g.hw; ++i) q[i] = a1 * d[i] + a2 * (p[i] - mu) + a3;
    }
  }
}

}  // namespace safnet::cpu
