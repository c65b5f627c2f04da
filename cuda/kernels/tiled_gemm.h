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
// read through them, with no division per element (a problem with a B cursor or table needs no b()); the
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

// The production tile: 256 threads, 4x4 outputs each, 16 k per step: a 2-byte weight row's piece of
// a step is a whole 32-byte sector, and a step's two barriers serve 256 multiply-adds a thread.
using DefaultTile = GemmTile<64, 64, 16, 4, 4>;

// The blocks per SM a problem's SIMT kernel is compiled to fit (__launch_bounds__): a problem that
// fits more than ptxas would give it without spilling says how many with kSimtMinBlocks (6 blocks
// of 256 threads: 40 registers, 5: 48); 0 leaves the count to ptxas (nvcc writes no .minnctapersm,
// where 1 would let it take up to 255 registers).
template <typename P>
constexpr int simt_min_blocks() {
  if constexpr (requires { P::kSimtMinBlocks; })
    return P::kSimtMinBlocks;
  else
    return 0;
}

// Block z sums k in [z k_chunk, (z + 1) k_chunk): split-K (cuda/kernels/splitk_gemm.h) launches
// several along z with k_chunk a multiple of BK; a plain launch one, with k_chunk = K.
template <int BM, int BN, int BK, int TM, int TN, typename P>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), simt_min_blocks<P>()) tiled_gemm_kernel(P p, int k_chunk) {
  constexpr int kThreads = (BM / TM) * (BN / TN);
  // (BK, BM): A tile, k-major so a thread reads its TM values in a row, as one vector load. Where k
  // is fast in global memory a warp stores 32 / BK rows of BK k: the 4 padding columns put 8 k of a
  // row on distinct banks, and the column's two low bits XORed with flip(k), k's block of 8 times
  // 32 / BK, move each further 8 k off them. A thread's TM (TN) values stay one aligned vector, in
  // an order fixed by k, which the unrolled loop undoes for free.
  static_assert(BK == 8 || BK == 16 || BK == 32, "flip() covers 8, 16 or 32 k");
  static_assert(TM % 4 == 0 && TN % 4 == 0, "flip() permutes aligned groups of 4 columns");
  __shared__ __align__(16) float as[BK][BM + 4];
  __shared__ __align__(16) float bs[BK][BN + 4];  // (BK, BN)
  constexpr auto flip = [](int kk) { return ((kk >> 3) & (BK / 8 - 1)) * (32 / BK); };
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
  // The block's output rows for a TableStore problem, visible to the epilogue after the main loop's
  // barriers (K >= 1).
  __shared__ typename StoreRowOf<P>::type store_rows[TableStore<P> ? BM : 1];
  if constexpr (TableStore<P>)
    for (int r = tid; r < BM; r += kThreads) store_rows[r] = p.store_row(m0 + r);

  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    if constexpr (TableA<P>) {
      const int kk = tid % BK, k = k0 + kk;
      const auto row = p.a_row(k);
      for (int e = tid; e < BK * BM; e += kThreads) {
        const int mm = e / BK, m = m0 + mm;
        const AccessRequest request("A tile", access_key(k0, e - tid));
        as[kk][mm ^ flip(kk)] = m < p.M && k < k_end ? traced_load(p.a_src(row, m)) : 0.0f;
        trace_shared_store("A tile", access_key(k0, e - tid), &as[kk][mm ^ flip(kk)], sizeof(float));
      }
    } else {
      for (int e = tid; e < BK * BM; e += kThreads) {
        const int kk = P::kAKFast ? e % BK : e / BM, mm = P::kAKFast ? e / BK : e % BM;
        const int m = m0 + mm, k = k0 + kk;
        const AccessRequest request("A tile", access_key(k0, e - tid));
        as[kk][mm ^ flip(kk)] = m < p.M && k < p.K ? p.a(m, k) : 0.0f;
        trace_shared_store("A tile", access_key(k0, e - tid), &as[kk][mm ^ flip(kk)], sizeof(float));
      }
    }
    if constexpr (TableB<P>) {
      const int kk = tid % BK, k = k0 + kk;
      const auto row = p.b_row(k);
      for (int e = tid; e < BK * BN; e += kThreads) {
        const int nn = e / BK;
        const AccessRequest request("B tile", access_key(k0, e - tid));
        const float* src = k < k_end ? p.b_src(row, b_columns[nn]) : nullptr;
        bs[kk][nn ^ flip(kk)] = src ? traced_load(src) : 0.0f;
        trace_shared_store("B tile", access_key(k0, e - tid), &bs[kk][nn ^ flip(kk)], sizeof(float));
      }
    } else if constexpr (CursorB<P>) {
      // The cursor stands at k0 + tid / BN: the loop runs in increasing k0.
      for (int e = tid; e < BK * BN; e += kThreads) {
        const int kk = e / BN, nn = e % BN;
        const AccessRequest request("B tile", access_key(k0, e - tid));
        const float* src = k0 + kk < k_end ? p.b_src(b_cursor) : nullptr;
        bs[kk][nn ^ flip(kk)] = src ? traced_load(src) : 0.0f;
        trace_shared_store("B tile", access_key(k0, e - tid), &bs[kk][nn ^ flip(kk)], sizeof(float));
        p.b_advance(b_cursor, kThreads / BN);
      }
    } else {
      for (int e = tid; e < BK * BN; e += kThreads) {
        const int kk = P::kBKFast ? e % BK : e / BN, nn = P::kBKFast ? e / BK : e % BN;
        const int n = n0 + nn, k = k0 + kk;
        const AccessRequest request("B tile", access_key(k0, e - tid));
        bs[kk][nn ^ flip(kk)] = n < p.N && k < p.K ? p.b(k, n) : 0.0f;
        trace_shared_store("B tile", access_key(k0, e - tid), &bs[kk][nn ^ flip(kk)], sizeof(float));
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
      for (int i = 0; i < TM; ++i) af[i] = as[kk][ty * TM + (i ^ flip(kk))];
#pragma unroll
      for (int j = 0; j < TN; ++j) bf[j] = bs[kk][tx * TN + (j ^ flip(kk))];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += af[i] * bf[j];
    }
    __syncthreads();
  }

  // Unrolled, so that acc stays in registers rather than an indexed local array.
  if constexpr (TableStore<P>) {
    typename P::StoreColumn columns[TN];
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tx * TN + j;
      columns[j] = p.store_column(n < p.N ? n : 0);
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int m = m0 + ty * TM + i;
#pragma unroll
      for (int j = 0; j < TN; ++j)
        if (m < p.M && n0 + tx * TN + j < p.N) p.store(store_rows[ty * TM + i], columns[j], acc[i][j]);
    }
  } else {
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
}

// Launches the GEMM of problem p with tile T on stream s (nothing when C is empty).
template <typename T, typename P>
void launch_tiled_gemm(const P& p, cudaStream_t s) {
  if (p.M <= 0 || p.N <= 0) return;
  const dim3 grid((p.N + T::BN - 1) / T::BN, (p.M + T::BM - 1) / T::BM);
  SAFNET_LAUNCH((tiled_gemm_kernel<T::BM, T::BN, T::BK, T::TM, T::TN, P>), grid, T::kThreads, 0, s, p, p.K);
}

}  // namespace safnet::cuda
