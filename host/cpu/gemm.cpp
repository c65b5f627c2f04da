// sgemm: cblas_sgemm where built with BLAS, the own blocked loop otherwise (see gemm.h).
#include "host/cpu/gemm.h"

#include <algorithm>
#include <cstring>

#ifdef SAFNET_HAVE_BLAS
#include <cblas.h>
#endif

namespace safnet::cpu {

void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
           int ldb, float beta, float* c, int ldc) {
#ifdef SAFNET_HAVE_BLAS
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
#else
  gemm_fallback(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

bool gemm_uses_blas() {
#ifdef SAFNET_HAVE_BLAS
  return true;
#else
  return false;
#endif
}

namespace {

constexpr int kBlockK = 128;   // rows of op(B) per panel
constexpr int kBlockN = 512;   // columns of C per panel: 128 x 512 floats of B = 256 KiB
constexpr int kPackMax = kBlockK * kBlockN;

}  // namespace

void gemm_fallback(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                   const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  for (int i = 0; i < m; ++i) {
    float* ci = c + static_cast<long>(i) * ldc;
    if (beta == 0.0f)
      std::fill(ci, ci + n, 0.0f);
    else if (beta != 1.0f)
      for (int j = 0; j < n; ++j) ci[j] *= beta;
  }
  if (k <= 0 || alpha == 0.0f) return;
  // op(B) panel (kb, nb), packed row major so the inner loop reads it contiguously whatever trans_b.
  thread_local float packed[kPackMax];
  for (int j0 = 0; j0 < n; j0 += kBlockN) {
    const int nb = std::min(kBlockN, n - j0);
    for (int p0 = 0; p0 < k; p0 += kBlockK) {
      const int kb = std::min(kBlockK, k - p0);
      for (int p = 0; p < kb; ++p) {
        float* dst = packed + static_cast<long>(p) * nb;
        if (!trans_b) {
          std::memcpy(dst, b + static_cast<long>(p0 + p) * ldb + j0, sizeof(float) * static_cast<std::size_t>(nb));
        } else {
          for (int j = 0; j < nb; ++j) dst[j] = b[static_cast<long>(j0 + j) * ldb + p0 + p];
        }
      }
      for (int i = 0; i < m; ++i) {
        float* ci = c + static_cast<long>(i) * ldc + j0;
        for (int p = 0; p < kb; ++p) {
          const float av = trans_a ? a[static_cast<long>(p0 + p) * lda + i] : a[static_cast<long>(i) * lda + p0 + p];
          const float s = alpha * av;  // no skip of zeros: 0 * inf in B must give NaN as in BLAS
          const float* bp = packed + static_cast<long>(p) * nb;
#pragma omp simd
          for (int j = 0; j < nb; ++j) ci[j] += s * bp[j];
        }
      }
    }
  }
}

}  // namespace safnet::cpu
