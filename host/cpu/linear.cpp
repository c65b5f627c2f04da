// Linear (fully connected) forward and backward: sgemm over fixed row blocks, OpenMP across blocks.

#include <algorithm>

#include "host/check.h"
#include "host/cpu/gemm.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {

namespace {

void check_dims(int n, int in, int out, const char* op) {
  if (n < 1 || in < 1 || out < 1)
    fail("host/cpu/linear.cpp: ", op, ": bad dimensions n=", n, " in=", in, " out=", out);
}

int blocks_of(int rows) { return (rows + kRowBlock - 1) / kRowBlock; }

}  // namespace

void linear_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y) {
  check_dims(n, in, out, "linear_forward");
  blas_use_calling_thread();
  const int blocks = blocks_of(n);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int blk = 0; blk < blocks; ++blk) {
    const int r0 = blk * kRowBlock, rows = std::min(kRowBlock, n - r0);
    float* yb = y + static_cast<long>(r0) * out;  // (rows, OUT)
    if (b)
      for (int r = 0; r < rows; ++r) std::copy(b, b + out, yb + static_cast<long>(r) * out);
    sgemm(false, true, rows, out, in, 1.0f, x + static_cast<long>(r0) * in, in, w,
                in, b ? 1.0f : 0.0f, yb, out);
  }
}

void linear_backward_data(int n, int in, int out, const float* dy, const float* w, float* dx) {
  check_dims(n, in, out, "linear_backward_data");
  blas_use_calling_thread();
  const int blocks = blocks_of(n);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int blk = 0; blk < blocks; ++blk) {
    const int r0 = blk * kRowBlock, rows = std::min(kRowBlock, n - r0);
    sgemm(false, false, rows, in, out, 1.0f, dy + static_cast<long>(r0) * out, out,
                w, in, 0.0f, dx + static_cast<long>(r0) * in, in);
  }
}

void linear_backward_weight(int n, int in, int out, const float* x, const float* dy, float* dw, float* db) {
  check_dims(n, in, out, "linear_backward_weight");
  blas_use_calling_thread();
  // Split over output rows, so each weight's sum over the batch is one thread's, in one order.
  const int blocks = blocks_of(out);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int blk = 0; blk < blocks; ++blk) {
    const int o0 = blk * kRowBlock, rows = std::min(kRowBlock, out - o0);
    sgemm(true, false, rows, in, n, 1.0f, dy + o0, out, x, in, 0.0f,
                dw + static_cast<long>(o0) * in, in);
  }
  if (!db) return;
  std::fill(db, db + out, 0.0f);
  for (int i = 0; i < n; ++i) {
    const float* row = dy + static_cast<long>(i) * out;
#pragma omp simd
    for (int o = 0; o < out; ++o) db[o] += row[o];
  }
}

}  // namespace safnet::cpu
