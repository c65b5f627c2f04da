// The fused epilogue of conv2d_forward (see conv_epilogue.h). Each step is the separate op's own
// float operation in the same order (no fused multiply-add: the AVX2 path is built without FMA),
// so the result is the unfused one bit for bit; a NaN stays a NaN through ReLU, as in relu_forward.
#include "host/cpu/conv_epilogue.h"

#include <immintrin.h>

#include "host/cpu/cpu_features.h"

namespace safnet::cpu {

namespace {

template <bool kResidual, bool kResidualFirst, bool kRelu>
inline float epilogue_one(float y, float mu, float scale, float shift, float r) {
  float v = (y - mu) * scale + shift;
  if constexpr (kResidual) v = kResidualFirst ? r + v : v + r;
  if constexpr (kRelu) v = v < 0.0f ? 0.0f : v;
  return v;
}

template <bool kResidual, bool kResidualFirst, bool kRelu>
void rows_scalar(const ConvEpilogue& e, int k, long ohw, const float* residual, long p0, long cols, float* yn) {
  for (int c = 0; c < k; ++c) {
    float* y = yn + c * ohw + p0;
    const float* r = kResidual ? residual + c * ohw + p0 : nullptr;
    const float mu = e.mean[c], scale = e.scale[c], shift = e.shift[c];
    for (long i = 0; i < cols; ++i)
      y[i] = epilogue_one<kResidual, kResidualFirst, kRelu>(y[i], mu, scale, shift, kResidual ? r[i] : 0.0f);
  }
}

// Eight outputs per step; the tail of each row as rows_scalar does it.
template <bool kResidual, bool kResidualFirst, bool kRelu>
__attribute__((target("avx2"))) void rows_avx2(const ConvEpilogue& e, int k, long ohw, const float* residual, long p0,
                                               long cols, float* yn) {
  const __m256 zero = _mm256_setzero_ps();
  for (int c = 0; c < k; ++c) {
    float* y = yn + c * ohw + p0;
    const float* r = kResidual ? residual + c * ohw + p0 : nullptr;
    const float mu = e.mean[c], scale = e.scale[c], shift = e.shift[c];
    const __m256 vmu = _mm256_set1_ps(mu), vscale = _mm256_set1_ps(scale), vshift = _mm256_set1_ps(shift);
    long i = 0;
    for (; i + 8 <= cols; i += 8) {
      __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(y + i), vmu), vscale), vshift);
      if constexpr (kResidual) {
        const __m256 rv = _mm256_loadu_ps(r + i);
        v = kResidualFirst ? _mm256_add_ps(rv, v) : _mm256_add_ps(v, rv);
      }
      // v < 0 is false for NaN, which stays.
      if constexpr (kRelu) v = _mm256_andnot_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), v);
      _mm256_storeu_ps(y + i, v);
    }
    for (; i < cols; ++i)
      y[i] = epilogue_one<kResidual, kResidualFirst, kRelu>(y[i], mu, scale, shift, kResidual ? r[i] : 0.0f);
  }
}

template <bool kResidual, bool kResidualFirst, bool kRelu>
void rows(const ConvEpilogue& e, int k, long ohw, const float* residual, long p0, long cols, float* yn) {
  if (avx2_kernels_enabled()) return rows_avx2<kResidual, kResidualFirst, kRelu>(e, k, ohw, residual, p0, cols, yn);
  rows_scalar<kResidual, kResidualFirst, kRelu>(e, k, ohw, residual, p0, cols, yn);
}

}  // namespace

void apply_conv_epilogue(const ConvEpilogue& e, int k, long ohw, const float* residual, long p0, long cols,
                         float* yn) {
  if (residual && e.residual_first)
    return e.relu ? rows<true, true, true>(e, k, ohw, residual, p0, cols, yn)
                  : rows<true, true, false>(e, k, ohw, residual, p0, cols, yn);
  if (residual)
    return e.relu ? rows<true, false, true>(e, k, ohw, residual, p0, cols, yn)
                  : rows<true, false, false>(e, k, ohw, residual, p0, cols, yn);
  e.relu ? rows<false, false, true>(e, k, ohw, residual, p0, cols, yn)
         : rows<false, false, false>(e, k, ohw, residual, p0, cols, yn);
}

}  // namespace safnet::cpu
