// The one single-precision GEMM entry of the CPU backend. Built with BLAS (SAFNET_BLAS=ON, the
// default) it forwards to cblas_sgemm; built without (SAFNET_BLAS=OFF, the self-contained GPU
// bundle, which must not carry a 36 MB libopenblas) it runs gemm_fallback below. Callers already
// split their work across OpenMP threads and run one GEMM per thread, so neither path starts
// threads of its own.
#pragma once

namespace safnet::cpu {

// C (m, n) = alpha * op(A) op(B) + beta * C, all row major; op(A) is (m, k): A is (m, k) with
// leading dimension lda, or (k, m) when trans_a; op(B) is (k, n): B is (k, n), or (n, k) when
// trans_b. beta == 0 overwrites C without reading it (NaN in C does not propagate), as BLAS does.
void sgemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
           int ldb, float beta, float* c, int ldc);

// The own GEMM: blocked over k and n so the panel of B stays in cache, the inner loop a
// contiguous axpy over a row of C that the compiler vectorises. Single-threaded.
void gemm_fallback(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                   const float* b, int ldb, float beta, float* c, int ldc);

// Whether sgemm goes to BLAS (false: to gemm_fallback).
bool gemm_uses_blas();

}  // namespace safnet::cpu
