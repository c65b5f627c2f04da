// The SIMT tiled GEMM behind conv2d and linear: C (M, N) = A (M, K) B (K, N), where a problem type
// says how to read A and B (implicit im2col, dequant + SAF of weights) and how to store C.
//
// A problem P provides: int M, N, K; `float a(int m, int k) const`; `float b(int k, int n) const`;
// `void store(int m, int n, float v) const`; and the booleans kAKFast / kBKFast: whether consecutive
// k are adjacent in memory for A / B, which picks the order threads load a tile in (coalescing).
// Each block computes a BM x BN tile of C with (BM / TM) * (BN / TN) threads, TM x TN per thread,
// stepping through K by BK through shared memory. Every element of C is summed by one thread in
// increasing k, so the result does not depend on the schedule: deterministic by construction.
// Where the problem offers a cursor or operand tables (cuda/kernels/gemm_operands.h), the tiles are
// read through them, with no division per element (a problem with a B table needs no b()); the
// values, and so the bits, are the same.
#pragma once
#include "cuda/access_trace.h"
#include "cuda/hd.h"
#include "cuda/kernels/gemm_operands.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct GemmTile {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kThreads = (BM / TM) * (BN / TN);
  static_assert(BM % TM == 0 && BN % TN == 0, "a tile must split evenly into thread tiles");
  static_assert(kThreads >= 32 && kThreads <= 1024, "threads per block out of range");
};

// The production tile: 256 threads, 4x4 outputs each.
using DefaultTile = GemmTile<64, 64, 8, 4, 4>;

// Block z sums k in [z k_chunk, (z + 1) k_chunk): split-K (cuda/kernels/splitk_gemm.h) launches
// several along z with k_chunk a multiple of BK; a plain launch one, with k_chunk = K.
template <int BM, int BN, int BK, int TM, int TN, typename P>
__global__ void __launch_bounds__((BM / TM) * (BN / TN)) tiled_gemm_kernel(P p, int k_chunk) {
  constexpr int kThreads = (BM / TM) * (BN / TN);
  // (BK, BM): A tile, k-major so a thread reads its TM values in a row, as one vector load. The 4
  // padding columns put the 8 k of 4 rows that a warp stores when k is fast on distinct banks.
  __shared__ __align__(16) float as[BK][BM + 4];
  __shared__ __align__(16) float bs[BK][BN + 4];  // (BK, BN)
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
  const int k_begin = blockIdx.z * k_chunk, k_end = p.K - k_begin < k_chunk ? p.K : k_begin + k_chunk;
  float acc[TM][TN];
  for (int i = 0; i < TM; ++i)
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  static_assert(kThreads % BK == 0 && kThreads % BN == 0, "a thread keeps its k (K-fast) or its column (N-fast)");
  const int tid = threadIdx.x;
  __shared__ typename BColumnOf<P>::type b_columns[TableB<P> ? BN : 1];
  if constexpr (TableB<P>) {
    for (int n = tid; n < BN; n += kThreads) b_columns[n] = p.b_column(n0 + n);
    __syncthreads();
  }
  [[maybe_unused]] auto b_cursor = [&] {
    if constexpr (CursorB<P>)
      return p.b_cursor(k_begin + tid / BN, n0 + tid % BN);
    else
      return 0;
  }();

  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    if constexpr (TableA<P>) {
      const int kk = tid % BK, k = k0 + kk;
      const auto row = p.a_row(k);
      for (int e = tid; e < BK * BM; e += kThreads) {
        const int mm = e / BK, m = m0 + mm;
        const AccessRequest request("A tile", access_key(k0, e - tid));
        as[kk][mm] = m < p.M && k < k_end ? traced_load(p.a_src(row, m)) : 0.0f;
        trace_shared_store("A tile", access_key(k0, e - tid), &as[kk][mm], sizeof(float));
      }
    } else {
      for (int e = tid; e < BK * BM; e += kThreads) {
        const int kk = P::kAKFast ? e % BK : e / BM, mm = P::kAKFast ? e / BK : e % BM;
        const int m = m0 + mm, k = k0 + kk;
        const AccessRequest request("A tile", access_key(k0, e - tid));
        as[kk][mm] = m < p.M && k < p.K ? p.a(m, k) : 0.0f;
        trace_shared_store("A tile", access_key(k0, e - tid), &as[kk][mm], sizeof(float));
      }
    }
    if constexpr (TableB<P>) {
      const int kk = tid % BK, k = k0 + kk;
      const auto row = p.b_row(k);
      for (int e = tid; e < BK * BN; e += kThreads) {
        const int nn = e / BK;
        const AccessRequest request("B tile", access_key(k0, e - tid));
        const float* src = k < k_end ? p.b_src(row, b_columns[nn]) : nullptr;
        bs[kk][nn] = src ? traced_load(src) : 0.0f;
        trace_shared_store("B tile", access_key(k0, e - tid), &bs[kk][nn], sizeof(float));
      }
    } else if constexpr (CursorB<P>) {
      // The cursor stands at k0 + tid / BN: the loop runs in increasing k0.
      for (int e = tid; e < BK * BN; e += kThreads) {
        const int kk = e / BN, nn = e % BN;
        const AccessRequest request("B tile", access_key(k0, e - tid));
        const float* src = k0 + kk < k_end ? p.b_src(b_cursor) : nullptr;
        bs[kk][nn] = src ? traced_load(src) : 0.0f;
        trace_shared_store("B tile", access_key(k0, e - tid), &bs[kk][nn], sizeof(float));
        p.b_advance(b_cursor, kThreads / BN);
      }
    } else {
      for (int e = tid; e < BK * BN; e += kThreads) {
        const int kk = P::kBKFast ? e % BK : e / BN, nn = P::kBKFast ? e / BK : e % BN;
        const int n = n0 + nn, k = k0 + kk;
        const AccessRequest request("B tile", access_key(k0, e - tid));
        bs[kk][nn] = n < p.N && k < p.K ? p.b(k, n) : 0.0f;
        trace_shared_store("B tile", access_key(k0, e - tid), &bs[kk][nn], sizeof(float));
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float af[TM], bf[TN];
      // Each thread's TM (TN) adjacent values are one vector load (LDS.64 / LDS.128).
      trace_shared_load("A tile", access_key(k0, kk), &as[kk][ty * TM], TM * sizeof(float));
      trace_shared_load("B tile", access_key(k0, kk), &bs[kk][tx * TN], TN * sizeof(float));
#pragma unroll
      for (int i = 0; i < TM; ++i) af[i] = as[kk][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TN; ++j) bf[j] = bs[kk][tx * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += af[i] * bf[j];
    }
    __syncthreads();
  }

  // Unrolled, so that acc stays in registers rather than an indexed local array.
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + ty * TM + i;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tx * TN + j;
      if (m < p.M && n < p.N) p.store(m, n, acc[i][j]);
    }
  }
}

// Launches the GEMM of problem p with tile T on stream s (nothing when C is empty).
template <typename T, typename P>
void launch_tiled_gemm(const P& p, cudaStream_t s) {
  if (p.M <= 0 || p.N <= 0) return;
  const dim3 grid((p.N + T::BN - 1) / T::BN, (p.M + T::BM - 1) / T::BM);
  SAFNET_LAUNCH((tiled_gemm_kernel<T::BM, T::BN, T::BK, T::TM, T::TN, P>), grid, T::kThreads, 0, s, p, p.K);
}

}  // namespace safnet::cuda
