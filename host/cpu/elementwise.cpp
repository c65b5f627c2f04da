// Element-wise ops: ReLU forward/backward and addition.
#include <cstdint>

#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {

void relu_forward(std::int64_t n, const float* x, float* y) {
  // A NaN passes through (NaN < 0 is false), as in PyTorch, so a corrupted weight stays visible.
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void relu_backward(std::int64_t n, const float* y, const float* dy, float* dx) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    const float d = dy[i];  // loaded unconditionally so the select vectorises, without a branch
    dx[i] = y[i] > 0.0f ? d : 0.0f;
  }
}

void add_forward(std::int64_t n, const float* a, const float* b, float* y) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

}  // namespace safnet::cpu
