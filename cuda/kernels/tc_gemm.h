// The tensor-core GEMM behind conv2d and linear in the TF32, 3xTF32 and BF16 math modes
// (cuda/math_mode.h), on the same problem types as the SIMT GEMM (cuda/kernels/tiled_gemm.h): the
// problem's a() and b() still dequantise and apply the SAF as the tile is read, and its store()
// runs the epilogue, so tau(W) never exists in global memory.
//
// A block computes a BM x BN tile of C with 4 warps, each a WM x WN piece as 16 x 16 WMMA
// accumulators, stepping through K by BK = 16. The next K-tile is read from global memory into
// registers while the tensor cores work on the current one in shared memory (two buffers, one
// barrier per step). Operands are rounded once, as they enter shared memory (TF32, BF16); 3xTF32
// keeps f32 there and splits each fragment x = big + small, both TF32, adding small*big + big*small
// before big*big (a small*small term below 2^-22 |x y| is dropped). Each accumulator sums its K in
// increasing order: the result does not depend on the schedule.
//
// Shared layouts: A is (BM, BK + 4) f32 or (BM, BK + 8) bf16, B (BK, BN + 8), C (BM, BN + 8): row
// strides of 20 and BN + 8 floats put the 8 rows and 4 columns a quad of lanes reads for one
// m16n8k8 fragment, and the 4 rows x 8 columns a half-warp stores of an accumulator in 64-bit
// pairs, on distinct banks, and keep every fragment 256-bit aligned as WMMA requires.
#pragma once
#include "cuda/access_trace.h"
#include "cuda/hd.h"
#include "cuda/kernels/tiled_gemm.h"
#include "cuda/launch.h"
#include "cuda/math_mode.h"
#include "cuda/wmma.h"

namespace safnet::cuda::inline SAFNET_BUILD {

template <int BM_, int BN_, int WM_, int WN_>
struct TcTile {
  static constexpr int BM = BM_, BN = BN_, BK = 16, WM = WM_, WN = WN_;
  static constexpr int kWarps = (BM / WM) * (BN / WN);
  static constexpr int kThreads = 32 * kWarps;
  static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 16 == 0, "warp tiles of 16 x 16 fragments");
};
// Picked by the number of output rows (conv: output channels), so 16- and 32-channel layers fill
// their tiles: 4 warps each.
using TcTileM16 = TcTile<16, 128, 16, 32>;
using TcTileM32 = TcTile<32, 128, 32, 32>;
using TcTileM64 = TcTile<64, 64, 32, 32>;

#if defined(__CUDACC__) || !defined(SAFNET_CUDA_REAL)

template <MathMode kMode>
struct TcMath;
template <>
struct TcMath<MathMode::tf32> {
  using Smem = float;
  using Operand = nvcuda::wmma::precision::tf32;
  static constexpr int kK = 8, kPadA = 4, kPadB = 8;
  __device__ static float to_smem(float v) { return nvcuda::wmma::__float_to_tf32(v); }
};
template <>
struct TcMath<MathMode::tf32x3> : TcMath<MathMode::tf32> {
  __device__ static float to_smem(float v) { return v; }  // split per fragment
};
template <>
struct TcMath<MathMode::bf16> {
  using Smem = __nv_bfloat16;
  using Operand = __nv_bfloat16;
  static constexpr int kK = 16, kPadA = 8, kPadB = 8;
  __device__ static __nv_bfloat16 to_smem(float v) { return __float2bfloat16_rn(v); }
};

// x becomes its TF32 rounding and small the TF32 rounding of what that left out.
template <typename F>
__device__ void split_tf32(F& x, F& small) {
#pragma unroll
  for (int t = 0; t < x.num_elements; ++t) {
    const float big = nvcuda::wmma::__float_to_tf32(x.x[t]);
    small.x[t] = nvcuda::wmma::__float_to_tf32(x.x[t] - big);
    x.x[t] = big;
  }
}

template <typename T, MathMode kMode, typename P>
__global__ void __launch_bounds__(T::kThreads) tc_gemm_kernel(P p) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  using Math = TcMath<kMode>;
  using Smem = typename Math::Smem;
  constexpr int BM = T::BM, BN = T::BN, BK = T::BK, kThreads = T::kThreads, KK = Math::kK;
  constexpr int LDA = BK + Math::kPadA, LDB = BN + Math::kPadB, LDC = BN + 8;
  constexpr int FM = T::WM / 16, FN = T::WN / 16;
  constexpr int kAPer = BM * BK / kThreads, kBPer = BK * BN / kThreads;
  static_assert(BM * BK % kThreads == 0 && BK * BN % kThreads == 0, "tiles split evenly over the threads");
  __shared__ __align__(32) Smem as[2 * BM * LDA];
  __shared__ __align__(32) Smem bs[2 * BK * LDB];
  __shared__ __align__(32) float cs[BM * LDC];

  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = warp / (BN / T::WN), wn = warp % (BN / T::WN);

  // Element j of a thread's share of a tile, in the order that keeps a warp's global reads adjacent.
  // Along k, a warp's two half-warps fill rows 4 apart (0 and 4, 1 and 5, ...): adjacent rows
  // (LDA = 20 words) would overlap on 4 banks.
  auto a_at = [&](int j, int& mm, int& kk) {
    const int e = tid + j * kThreads, row = e / BK;
    mm = P::kAKFast ? (row & ~7) | (row & 1) << 2 | (row >> 1 & 3) : e % BM;
    kk = P::kAKFast ? e % BK : e / BM;
  };
  auto b_at = [&](int j, int& kk, int& nn) {
    const int e = tid + j * kThreads;
    kk = P::kBKFast ? e % BK : e / BN;
    nn = P::kBKFast ? e / BK : e % BN;
  };
  // The next K-tile goes straight into the other shared buffer, in rolled loops: each element's
  // read may dequantise a stored word and apply the SAF, code of every storage format and SAF
  // kind, and unrolling copied it per element (a main loop of thousands of instructions, spills,
  // minutes of ptxas, and a GPU bundle twice the size). Other warps hide the loads' latency.
  auto load_tile = [&](int buf, int k0) {
#pragma unroll 1
    for (int j = 0; j < kAPer; ++j) {
      int mm, kk;
      a_at(j, mm, kk);
      const int m = m0 + mm, k = k0 + kk;
      const AccessRequest request("A tile", access_key(k0, j));
      Smem* at = as + buf * BM * LDA + mm * LDA + kk;
      *at = Math::to_smem(m < p.M && k < p.K ? p.a(m, k) : 0.0f);
      trace_shared_store("A tile", access_key(k0, j), at, sizeof(Smem));
    }
#pragma unroll 1
    for (int j = 0; j < kBPer; ++j) {
      int kk, nn;
      b_at(j, kk, nn);
      const int n = n0 + nn, k = k0 + kk;
      const AccessRequest request("B tile", access_key(k0, j));
      Smem* at = bs + buf * BK * LDB + kk * LDB + nn;
      *at = Math::to_smem(n < p.N && k < p.K ? p.b(k, n) : 0.0f);
      trace_shared_store("B tile", access_key(k0, j), at, sizeof(Smem));
    }
  };

  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, KK, typename Math::Operand, wmma::row_major>;
  using FragB = wmma::fragment<wmma::matrix_b, 16, 16, KK, typename Math::Operand, wmma::row_major>;
  wmma::fragment<wmma::accumulator, 16, 16, KK, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  load_tile(0, 0);
  __syncthreads();
  int buf = 0;
  for (int k0 = 0; k0 < p.K; k0 += BK) {
    // The other buffer was last read before the previous barrier.
    if (k0 + BK < p.K) load_tile(buf ^ 1, k0 + BK);
    const Smem* at = as + buf * BM * LDA + wm * T::WM * LDA;
    const Smem* bt = bs + buf * BK * LDB + wn * T::WN;
#pragma unroll
    for (int kk = 0; kk < BK; kk += KK) {
      FragA fa[FM];
      FragB fb[FN];
#pragma unroll
      for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(fa[i], at + i * 16 * LDA + kk, LDA);
#pragma unroll
      for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(fb[j], bt + kk * LDB + j * 16, LDB);
      if constexpr (kMode == MathMode::tf32x3) {
        FragA fa_small[FM];
        FragB fb_small[FN];
#pragma unroll
        for (int i = 0; i < FM; ++i) split_tf32(fa[i], fa_small[i]);
#pragma unroll
        for (int j = 0; j < FN; ++j) split_tf32(fb[j], fb_small[j]);
#pragma unroll
        for (int i = 0; i < FM; ++i)
#pragma unroll
          for (int j = 0; j < FN; ++j) {
            wmma::mma_sync(acc[i][j], fa_small[i], fb[j], acc[i][j]);
            wmma::mma_sync(acc[i][j], fa[i], fb_small[j], acc[i][j]);
          }
      }
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
    buf ^= 1;
  }

#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j)
      wmma::store_matrix_sync(cs + (wm * T::WM + i * 16) * LDC + wn * T::WN + j * 16, acc[i][j], LDC,
                              wmma::mem_row_major);
  __syncthreads();
  for (int e = tid; e < BM * BN; e += kThreads) {
    const int mm = e / BN, nn = e % BN, m = m0 + mm, n = n0 + nn;
    if (m < p.M && n < p.N) {
      trace_shared_load("C staging", access_key(0, e - tid), &cs[mm * LDC + nn], sizeof(float));
      p.store(m, n, cs[mm * LDC + nn]);
    }
  }
#endif
}

template <typename T, MathMode kMode, typename P>
void launch_tc_gemm_tile(const P& p, cudaStream_t s) {
  const dim3 grid((p.N + T::BN - 1) / T::BN, (p.M + T::BM - 1) / T::BM);
  SAFNET_LAUNCH((tc_gemm_kernel<T, kMode, P>), grid, T::kThreads, 0, s, p);
}

template <MathMode kMode, typename P>
void launch_tc_gemm(const P& p, cudaStream_t s) {
  if (p.M <= 16)
    launch_tc_gemm_tile<TcTileM16, kMode>(p, s);
  else if (p.M <= 32)
    launch_tc_gemm_tile<TcTileM32, kMode>(p, s);
  else
    launch_tc_gemm_tile<TcTileM64, kMode>(p, s);
}

// Problem p (the interface of cuda/kernels/tiled_gemm.h) in math mode `mode`; fp32 is the SIMT GEMM.
template <typename P>
void launch_gemm(const P& p, MathMode mode, cudaStream_t s) {
  if (p.M <= 0 || p.N <= 0) return;
  switch (mode) {
    case MathMode::fp32: launch_tiled_gemm<DefaultTile>(p, s); return;
    case MathMode::tf32x3: launch_tc_gemm<MathMode::tf32x3>(p, s); return;
    case MathMode::tf32: launch_tc_gemm<MathMode::tf32>(p, s); return;
    case MathMode::bf16: launch_tc_gemm<MathMode::bf16>(p, s); return;
  }
}

#endif

}  // namespace safnet::cuda
