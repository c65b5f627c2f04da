// The tensor-core GEMM behind conv2d and linear in the TF32, 3xTF32 and BF16 math modes
// (cuda/math_mode.h), on the same problem types as the SIMT GEMM (cuda/kernels/tiled_gemm.h): the
// problem's a() and b() still dequantise and apply the SAF as the tile is read, and its store()
// runs the epilogue, so tau(W) never exists in global memory.
//
// A block computes a BM x BN tile of C with 4 warps, each a WM x WN piece as 16 x 16 WMMA
// accumulators, stepping through K by BK = 16 (a K range per grid.z for split-K). The next K-tile
// goes into the other shared buffer while the tensor cores work on the current one (two buffers,
// one barrier per step): by cp.async where the problem allows (raw weight words, decoded from
// shared memory in a phase of their own, see RawA; f32 operands read through a cursor or a table,
// see CursorB and TableA/B, which BF16 converts in that phase too), else through registers.
// Operands are rounded once to TF32 or BF16 (as they enter the tile, or as fragments for
// cp.async'd f32 in TF32); 3xTF32 keeps f32 and splits each fragment
// x = big + small, both TF32, adding small*big + big*small before big*big (a small*small term below
// 2^-22 |x y| is dropped). Each accumulator sums its K in increasing order: the result does not
// depend on the schedule.
//
// Shared layouts (TcOperand): an operand whose k is fast in global memory is (rows, BK + 4) f32 or
// (rows, BK + 8) bf16, the others (BK, rows + 8), read as row- or col-major fragments to match;
// C is (BM, BN + 8). Row strides of 20 and rows + 8 floats put the 8 rows and 4 columns a quad of
// lanes reads for one m16n8k8 fragment, and the 4 rows x 8 columns a half-warp stores of an
// accumulator in 64-bit pairs, on distinct banks, and keep every fragment 256-bit aligned as WMMA
// requires.
#pragma once
#include <cstdint>
#include <type_traits>

#include "cuda/access_trace.h"
#include "cuda/cp_async.h"
#include "cuda/hd.h"
#include "cuda/kernels/gemm_operands.h"
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

// Calls f with the tile for a GEMM of M rows; host code too (split-K plans use its sizes).
template <typename F>
decltype(auto) with_tc_tile(std::int64_t m, F&& f) {
  if (m <= 16) return f(TcTileM16{});
  if (m <= 32) return f(TcTileM32{});
  return f(TcTileM64{});
}

// The block tile launch_gemm runs a GEMM of M rows with in math mode `mode`, for host-side plans.
struct GemmBlockTile {
  int bm, bn, bk, threads;
};
inline GemmBlockTile gemm_block_tile(std::int64_t m, MathMode mode) {
  if (mode == MathMode::fp32) return {DefaultTile::BM, DefaultTile::BN, DefaultTile::BK, DefaultTile::kThreads};
  return with_tc_tile(m, []<typename T>(T) { return GemmBlockTile{T::BM, T::BN, T::BK, T::kThreads}; });
}

#if defined(__CUDACC__) || !defined(SAFNET_CUDA_REAL)

template <MathMode kMode>
struct TcMath;
template <>
struct TcMath<MathMode::tf32> {
  using Smem = float;
  using Operand = nvcuda::wmma::precision::tf32;
  static constexpr int kK = 8, kPadK = 4;  // padding of a K-fast tile row
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
  static constexpr int kK = 16, kPadK = 8;  // padding of a K-fast tile row
  __device__ static __nv_bfloat16 to_smem(float v) { return __float2bfloat16_rn(v); }
};

// An operand's tile in shared memory (Rows: M for A, N for B), its fast dimension in global memory
// kept contiguous so that a warp's stores fall on distinct banks: K-fast as (Rows, BK + kPadK), the
// fragments read along its rows, else as (BK, Rows + 8), read across them (col_major A, row_major B).
template <int Rows, int BK, bool kKFast, int kPadK>
struct TcOperand {
  static constexpr int LD = kKFast ? BK + kPadK : Rows + 8;
  static constexpr int kSize = kKFast ? Rows * LD : BK * LD;  // one buffer
  __device__ static int at(int row, int k) { return kKFast ? row * LD + k : k * LD + row; }
  // Element e of a thread's share, in the order that keeps a warp's global reads adjacent. K-fast,
  // a warp's two half-warps fill rows 4 apart (0 and 4, 1 and 5, ...): rows LD = 20 (or 24 bf16)
  // apart would overlap on 4 banks. Sixteen rows across k: a warp's two k go 2 apart, not 24 words.
  __device__ static void element(int e, int& row, int& k) {
    if constexpr (kKFast) {
      const int r = e / BK;
      row = (r & ~7) | (r & 1) << 2 | (r >> 1 & 3);
      k = e % BK;
    } else {
      const int r = e / Rows;
      row = e % Rows;
      k = Rows == 16 ? (r & ~3) | (r & 1) << 1 | (r >> 1 & 1) : r;
    }
  }
};

// The row that chunk row q of a tile copied in 16-byte chunks lands in: rows in bit-reversed order
// within each 8 (0 4 2 6 1 5 3 7), so that with rows 80 bytes apart the 8 chunks of a quarter-warp's
// stores (2 rows of 4 chunks, 4 of 2 or fewer) cover the 32 banks once.
__device__ constexpr int chunk_row(int q) { return (q & ~7) | (q & 1) << 2 | (q & 2) | (q >> 2 & 1); }

// Rounds a fragment's f32 elements to TF32 as they would have been rounded entering shared memory.
template <typename F>
__device__ void round_tf32(F& x) {
#pragma unroll
  for (int t = 0; t < x.num_elements; ++t) x.x[t] = nvcuda::wmma::__float_to_tf32(x.x[t]);
}

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
__global__ void __launch_bounds__(T::kThreads) tc_gemm_kernel(P p, int k_chunk) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  using Math = TcMath<kMode>;
  using Smem = typename Math::Smem;
  constexpr int BM = T::BM, BN = T::BN, BK = T::BK, kThreads = T::kThreads, KK = Math::kK;
  using ATile = TcOperand<BM, BK, P::kAKFast, Math::kPadK>;
  using BTile = TcOperand<BN, BK, P::kBKFast, Math::kPadK>;
  constexpr int LDC = BN + 8;
  constexpr int FM = T::WM / 16, FN = T::WN / 16;
  constexpr int kAPer = BM * BK / kThreads, kBPer = BK * BN / kThreads;
  static_assert(BM * BK % kThreads == 0 && BK * BN % kThreads == 0, "tiles split evenly over the threads");
  __shared__ __align__(32) Smem as[2 * ATile::kSize];
  __shared__ __align__(32) Smem bs[2 * BTile::kSize];

  // f32 operands by cp.async where the problem finds their addresses without division (a cursor or
  // a table): the words stay in flight while the tensor cores work. They go straight into the tile
  // in TF32 and 3xTF32, which round them as fragments (3xTF32 splits them there anyway); BF16 tiles
  // hold converted values, so there they go into an f32 staging tile of TF32's layout and are
  // converted in the decode phase. No thread waits on a global load in any mode.
  constexpr bool kTableA = TableA<P>, kTableB = TableB<P>;
  constexpr bool kAsyncA = kTableA || CursorA<P>, kAsyncB = CursorB<P> || kTableB;
  constexpr bool kBf16 = !std::is_same_v<Smem, float>;
  constexpr bool kStageA = kAsyncA && kBf16, kStageB = kAsyncB && kBf16;
  using AStage = TcOperand<BM, BK, P::kAKFast, TcMath<MathMode::tf32>::kPadK>;
  using BStage = TcOperand<BN, BK, P::kBKFast, TcMath<MathMode::tf32>::kPadK>;
  // The staging tiles share C's staging buffer, which only the epilogue writes, after the main
  // loop's last barrier.
  constexpr int kAStage = kStageA ? AStage::kSize : 0, kBStage = kStageB ? BStage::kSize : 0;
  __shared__ __align__(32) float cs[BM * LDC > kAStage + kBStage ? BM * LDC : kAStage + kBStage];
  [[maybe_unused]] float* const a_f32 = cs;
  [[maybe_unused]] float* const b_f32 = cs + kAStage;
  static_assert(kThreads % BK == 0, "a K-fast operand's thread keeps one k per tile");
  __shared__ typename BColumnOf<P>::type b_columns[kTableB ? BN : 1];
  constexpr int kBStep = kThreads / BN;  // k between a thread's B elements; its column is fixed
  static_assert(!CursorB<P> || kThreads % BN == 0, "a cursor needs one column per thread");
  // A as stored words: copied raw by cp.async in 16-byte chunks (in flight with B), then decoded
  // from shared memory in a phase of its own, so no thread waits on a global load to decode.
  constexpr bool kRawA = RawA<P>;
  constexpr bool kAsync = kAsyncA || kAsyncB || kRawA;
  static_assert(!(kRawA && kAsyncA), "one way to read A");
  // A staged row: 64 bytes of words (BK words of 4 bytes; a sector of 1-byte words, see a_window),
  // and 16 bytes of padding so that the rows 4 apart that a warp's half-warps decode (a_at) fall on
  // different banks.
  constexpr int kStageRow = BK * 4 + 16;
  __shared__ __align__(16) unsigned char a_stage[kRawA ? BM * kStageRow : 16];

  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  // Block z sums k in [z k_chunk, (z + 1) k_chunk): split-K partition z (cuda/kernels/splitk_gemm.h).
  const int k_begin = blockIdx.z * k_chunk, k_end = p.K - k_begin < k_chunk ? p.K : k_begin + k_chunk;
  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = warp / (BN / T::WN), wn = warp % (BN / T::WN);
  // Chunks stay 16-byte aligned only when every row starts so (not e.g. a 3x3x3 conv's 27 words).
  [[maybe_unused]] const int a_wb = [&] {
    if constexpr (kRawA) return p.a_word_bytes();
    else return 4;
  }();
  [[maybe_unused]] const bool raw_a = [&] {
    if constexpr (kRawA)
      return reinterpret_cast<std::uintptr_t>(p.a_words()) % 16 == 0 && static_cast<std::int64_t>(p.K) * a_wb % 16 == 0;
    else
      return false;
  }();
  // A row's piece of one K-tile is BK words: 16 bytes of 1-byte words, half the 32-byte sector a
  // load fetches. Such rows are staged a sector at a time (a_window): a copy takes the aligned
  // sector that begins with the tile, the tile after it decodes from the sector's second half, and
  // a partition's first tile, where it begins mid-sector, takes that half alone.
  [[maybe_unused]] const bool a_window = a_wb * BK < 32;
  // The byte in row m's staged words where K-tile k0 begins.
  [[maybe_unused]] auto a_staged = [&](int m, int k0) -> int {
    if constexpr (kRawA) {
      if (!a_window) return 0;
      const auto at = reinterpret_cast<std::uintptr_t>(p.a_words()) + (static_cast<std::int64_t>(m) * p.K + k0) * a_wb;
      return static_cast<int>(at % 32);
    }
    return 0;
  };
  // A table's f32 rows in 16-byte chunks (ATile rows are 80 bytes apart, as a_stage's).
  [[maybe_unused]] const bool a_vectors = [&] {
    if constexpr (kAsyncA && VectorTableA<P>)
      return p.a_vectors();
    else
      return false;
  }();
  // A cursor's thread keeps its row; its k step is the same for every element (TcOperand::element).
  [[maybe_unused]] constexpr int kAStep = kThreads / BM;
  static_assert(!CursorA<P> || kThreads % BM == 0, "a cursor needs one row per thread");
  [[maybe_unused]] auto a_cursor = [&] {
    if constexpr (CursorA<P>) {
      int mm, kk;
      ATile::element(tid, mm, kk);
      return p.a_cursor(k_begin + kk, m0 + mm);
    } else {
      return 0;
    }
  }();
  [[maybe_unused]] auto b_cursor = [&] {
    if constexpr (CursorB<P>)
      return p.b_cursor(k_begin + tid / BN, n0 + tid % BN);
    else
      return 0;
  }();

  // Element j of a thread's share of each tile (TcOperand::element).
  auto a_at = [&](int j, int& mm, int& kk) { ATile::element(tid + j * kThreads, mm, kk); };
  auto b_at = [&](int j, int& kk, int& nn) { BTile::element(tid + j * kThreads, nn, kk); };
  // Where an f32 element copied by cp.async lands: the tile itself, or BF16's staging tile.
  auto a_f32_at = [&](int buf, int mm, int kk) -> float* {
    if constexpr (kBf16)
      return a_f32 + AStage::at(mm, kk);
    else
      return as + buf * ATile::kSize + ATile::at(mm, kk);
  };
  auto b_f32_at = [&](int buf, int nn, int kk) -> float* {
    if constexpr (kBf16)
      return b_f32 + BStage::at(nn, kk);
    else
      return bs + buf * BTile::kSize + BTile::at(nn, kk);
  };
  // One f32 element from `src` (null: zero) by cp.async.
  auto put_f32 = [&](const char* site, std::int64_t key, float* dst, const float* src) {
    const AccessRequest request(site, key);
    if (src) trace_global_load(src, 4);
    trace_shared_store(site, key, dst, 4);
    cp_async<4>(dst, src, src != nullptr);
  };
  // The next K-tile goes straight into the other shared buffer, in rolled loops: each element's
  // read may dequantise a stored word and apply the SAF, code of every storage format and SAF
  // kind, and unrolling copied it per element (a main loop of thousands of instructions, spills,
  // minutes of ptxas, and a GPU bundle twice the size). Other warps hide the loads' latency.
  auto load_tile = [&](int buf, int k0) {
    if constexpr (kRawA) {
      if (raw_a) {
        const int per_chunk = 16 / a_wb, chunks_per_row = a_window ? 2 : BK / per_chunk;
        const auto* words = static_cast<const unsigned char*>(p.a_words());
#pragma unroll 1
        for (int c = tid; c < BM * chunks_per_row; c += kThreads) {
          const int part = c % chunks_per_row, mm = chunk_row(c / chunks_per_row), m = m0 + mm;
          const int at = a_staged(m, k0), k = k0 + (part * 16 - at) / a_wb;
          // A tile in a sector's second half came with the copy before, unless this is the first.
          if (k < k0 || (at != 0 && k0 != k_begin)) continue;
          // K is a whole number of chunks (raw_a), and so is k_end: no chunk straddles it.
          const bool inside = m < p.M && k < k_end;
          const unsigned char* src = inside ? words + (static_cast<std::int64_t>(m) * p.K + k) * a_wb : nullptr;
          unsigned char* dst = a_stage + mm * kStageRow + part * 16;
          const AccessRequest request("A words", access_key(k0, c - tid));
          if (inside) trace_global_load(src, 16);
          trace_shared_store("A words", access_key(k0, c - tid), dst, 16);
          cp_async<16>(dst, src, inside);
        }
      }
    }
    if constexpr (kAsyncA && VectorTableA<P>) {
      if (a_vectors) {
        // A thread's chunk of a row is the same in every row it copies: one row of the table.
        constexpr int kChunks = BK / 4;
        const int kk = tid % kChunks * 4, k = k0 + kk;
        const auto row = p.a_row(k);
#pragma unroll 1
        for (int c = tid; c < BM * kChunks; c += kThreads) {
          const int mm = chunk_row(c / kChunks);
          const float* src = m0 + mm < p.M && k < k_end ? p.a_src(row, m0 + mm) : nullptr;
          float* dst = a_f32_at(buf, mm, kk);
          const AccessRequest request("A tile", access_key(k0, c - tid));
          if (src) trace_global_load(src, 16);
          trace_shared_store("A tile", access_key(k0, c - tid), dst, 16);
          cp_async<16>(dst, src, src != nullptr);
        }
      }
    }
    if constexpr (kTableA) {
      const int k = k0 + tid % BK;
      const auto row = p.a_row(k);
#pragma unroll 1
      for (int j = 0; j < kAPer && !a_vectors; ++j) {
        int mm, kk;
        a_at(j, mm, kk);
        const float* src = m0 + mm < p.M && k < k_end ? p.a_src(row, m0 + mm) : nullptr;
        put_f32("A tile", access_key(k0, j), a_f32_at(buf, mm, kk), src);
      }
    }
    if constexpr (CursorA<P>) {
      // The cursor stands at this thread's first k of tile k0: load_tile runs in increasing k0.
#pragma unroll 1
      for (int j = 0; j < kAPer; ++j) {
        int mm, kk;
        a_at(j, mm, kk);
        const float* src = k0 + kk < k_end ? p.a_src(a_cursor) : nullptr;
        put_f32("A tile", access_key(k0, j), a_f32_at(buf, mm, kk), src);
        p.a_advance(a_cursor, kAStep);
      }
    }
#pragma unroll 1
    for (int j = 0; j < kAPer && !raw_a && !kAsyncA; ++j) {
      int mm, kk;
      a_at(j, mm, kk);
      const int m = m0 + mm, k = k0 + kk;
      const AccessRequest request("A tile", access_key(k0, j));
      Smem* at = as + buf * ATile::kSize + ATile::at(mm, kk);
      *at = Math::to_smem(m < p.M && k < k_end ? p.a(m, k) : 0.0f);
      trace_shared_store("A tile", access_key(k0, j), at, sizeof(Smem));
    }
    if constexpr (kTableB) {
      const int k = k0 + tid % BK;
      const auto row = p.b_row(k);
#pragma unroll 1
      for (int j = 0; j < kBPer; ++j) {
        int kk, nn;
        b_at(j, kk, nn);
        const float* src = k < k_end ? p.b_src(row, b_columns[nn]) : nullptr;
        put_f32("B tile", access_key(k0, j), b_f32_at(buf, nn, kk), src);
      }
    } else if constexpr (CursorB<P>) {
      // The cursor stands at k0 + tid / BN: load_tile runs in increasing k0.
#pragma unroll 1
      for (int j = 0; j < kBPer; ++j) {
        const int kk = tid / BN + j * kBStep, nn = tid % BN;
        const float* src = k0 + kk < k_end ? p.b_src(b_cursor) : nullptr;
        put_f32("B tile", access_key(k0, j), b_f32_at(buf, nn, kk), src);
        p.b_advance(b_cursor, kBStep);
      }
    } else {
#pragma unroll 1
      for (int j = 0; j < kBPer; ++j) {
        int kk, nn;
        b_at(j, kk, nn);
        const int n = n0 + nn, k = k0 + kk;
        const AccessRequest request("B tile", access_key(k0, j));
        Smem* at = bs + buf * BTile::kSize + BTile::at(nn, kk);
        *at = Math::to_smem(n < p.N && k < k_end ? p.b(k, n) : 0.0f);
        trace_shared_store("B tile", access_key(k0, j), at, sizeof(Smem));
      }
    }
    if constexpr (kAsync) cp_async_commit();
  };
  // This thread's copies have landed; a barrier after it shows them to the block.
  auto wait_tile = [] {
    if constexpr (kAsync) cp_async_wait<0>();
  };
  // The decode phase, between barriers: K-tile k0's staged raw words (raw_a) and BF16's staged f32
  // operands, converted into the tiles of buffer `buf` (the stores of the "staging" sites).
  [[maybe_unused]] const bool decode = raw_a || kStageA || kStageB;
  auto decode_tile = [&](int buf, int k0) {
    if (raw_a || kStageA) {
#pragma unroll 1
      for (int j = 0; j < kAPer; ++j) {
        int mm, kk;
        a_at(j, mm, kk);
        float v = 0.0f;
        if constexpr (kRawA) {
          if (m0 + mm < p.M && k0 + kk < k_end) {
            const unsigned char* words = a_stage + mm * kStageRow + a_staged(m0 + mm, k0);
            trace_shared_load("A words", access_key(k0, j), words + kk * a_wb, a_wb);
            v = p.a_decode(words, kk);
          }
        } else if constexpr (kStageA) {
          const float* from = a_f32 + AStage::at(mm, kk);
          trace_shared_load("A staging", access_key(k0, j), from, 4);
          v = *from;
        }
        Smem* at = as + buf * ATile::kSize + ATile::at(mm, kk);
        *at = Math::to_smem(v);
        trace_shared_store(kRawA ? "A tile" : "A staging", access_key(k0, j), at, sizeof(Smem));
      }
    }
    if constexpr (kStageB) {
#pragma unroll 1
      for (int j = 0; j < kBPer; ++j) {
        int kk, nn;
        b_at(j, kk, nn);
        const float* from = b_f32 + BStage::at(nn, kk);
        trace_shared_load("B staging", access_key(k0, j), from, 4);
        Smem* at = bs + buf * BTile::kSize + BTile::at(nn, kk);
        *at = Math::to_smem(*from);
        trace_shared_store("B staging", access_key(k0, j), at, sizeof(Smem));
      }
    }
  };

  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, KK, typename Math::Operand,
                               std::conditional_t<P::kAKFast, wmma::row_major, wmma::col_major>>;
  using FragB = wmma::fragment<wmma::matrix_b, 16, 16, KK, typename Math::Operand,
                               std::conditional_t<P::kBKFast, wmma::col_major, wmma::row_major>>;
  wmma::fragment<wmma::accumulator, 16, 16, KK, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  if constexpr (kTableB) {
    for (int n = tid; n < BN; n += kThreads) b_columns[n] = p.b_column(n0 + n);
    __syncthreads();
  }
  load_tile(0, k_begin);
  wait_tile();
  __syncthreads();
  if (decode) {
    decode_tile(0, k_begin);
    __syncthreads();
  }
  int buf = 0;
  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    // The other buffer was last read before the previous barrier.
    if (k0 + BK < k_end) load_tile(buf ^ 1, k0 + BK);
    const Smem* at = as + buf * ATile::kSize;
    const Smem* bt = bs + buf * BTile::kSize;
#pragma unroll
    for (int kk = 0; kk < BK; kk += KK) {
      FragB fb[FN];
#pragma unroll
      for (int j = 0; j < FN; ++j) {
        load_shared_matrix_sync(fb[j], bt + BTile::at(wn * T::WN + j * 16, kk), BTile::LD);
        if constexpr (kAsyncB && kMode == MathMode::tf32) round_tf32(fb[j]);
      }
      [[maybe_unused]] FragB fb_small[FN];
      if constexpr (kMode == MathMode::tf32x3)
#pragma unroll
        for (int j = 0; j < FN; ++j) split_tf32(fb[j], fb_small[j]);
      // One A fragment (and its split) live at a time: 3xTF32 needs the registers.
#pragma unroll
      for (int i = 0; i < FM; ++i) {
        FragA fa;
        load_shared_matrix_sync(fa, at + ATile::at(wm * T::WM + i * 16, kk), ATile::LD);
        if constexpr (kAsyncA && kMode == MathMode::tf32) round_tf32(fa);
        if constexpr (kMode == MathMode::tf32x3) {
          FragA fa_small;
          split_tf32(fa, fa_small);
#pragma unroll
          for (int j = 0; j < FN; ++j) {
            wmma::mma_sync(acc[i][j], fa_small, fb[j], acc[i][j]);
            wmma::mma_sync(acc[i][j], fa, fb_small[j], acc[i][j]);
            wmma::mma_sync(acc[i][j], fa, fb[j], acc[i][j]);
          }
        } else {
#pragma unroll
          for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], fa, fb[j], acc[i][j]);
        }
      }
    }
    wait_tile();
    __syncthreads();
    if (decode && k0 + BK < k_end) {
      decode_tile(buf ^ 1, k0 + BK);
      __syncthreads();
    }
    buf ^= 1;
  }

#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j)
      store_shared_matrix_sync(cs + (wm * T::WM + i * 16) * LDC + wn * T::WN + j * 16, acc[i][j], LDC,
                               wmma::mem_row_major);
  // The block's output rows for a TableStore problem, found here, where the accumulators are
  // stored and their registers free (before the main loop they cost the 16-row tiles occupancy).
  __shared__ typename StoreRowOf<P>::type store_rows[TableStore<P> ? BM : 1];
  if constexpr (TableStore<P>)
    for (int r = tid; r < BM; r += kThreads) store_rows[r] = p.store_row(m0 + r);
  __syncthreads();
  if constexpr (TableStore<P>) {
    // A thread's column is the same for all its outputs: its offset is found once.
    static_assert(kThreads % BN == 0, "one column per thread");
    const int nn = tid % BN, n = n0 + nn;
    const auto column = p.store_column(n < p.N ? n : 0);
    for (int e = tid; e < BM * BN; e += kThreads) {
      const int mm = e / BN;
      if (m0 + mm < p.M && n < p.N) {
        trace_shared_load("C staging", access_key(0, e - tid), &cs[mm * LDC + nn], sizeof(float));
        p.store(store_rows[mm], column, cs[mm * LDC + nn]);
      }
    }
  } else {
    for (int e = tid; e < BM * BN; e += kThreads) {
      const int mm = e / BN, nn = e % BN, m = m0 + mm, n = n0 + nn;
      if (m < p.M && n < p.N) {
        trace_shared_load("C staging", access_key(0, e - tid), &cs[mm * LDC + nn], sizeof(float));
        p.store(m, n, cs[mm * LDC + nn]);
      }
    }
  }
#endif
}

// Problem p in `parts` K-partitions of k_chunk values each (one: the whole K), on p.M's tile.
template <MathMode kMode, typename P>
void launch_tc_gemm(const P& p, int parts, int k_chunk, cudaStream_t s) {
  with_tc_tile(p.M, [&]<typename T>(T) {
    const dim3 grid((p.N + T::BN - 1) / T::BN, (p.M + T::BM - 1) / T::BM, parts);
    SAFNET_LAUNCH((tc_gemm_kernel<T, kMode, P>), grid, T::kThreads, 0, s, p, k_chunk);
  });
}

// Problem p in math mode `mode` on the tensor cores; fp32 has no tensor-core kernel.
template <typename P>
void launch_tc_gemm(const P& p, MathMode mode, int parts, int k_chunk, cudaStream_t s) {
  switch (mode) {
    case MathMode::fp32: break;
    case MathMode::tf32x3: launch_tc_gemm<MathMode::tf32x3>(p, parts, k_chunk, s); return;
    case MathMode::tf32: launch_tc_gemm<MathMode::tf32>(p, parts, k_chunk, s); return;
    case MathMode::bf16: launch_tc_gemm<MathMode::bf16>(p, parts, k_chunk, s); return;
  }
}

// Problem p (the interface of cuda/kernels/tiled_gemm.h) in math mode `mode`; fp32 is the SIMT GEMM.
template <typename P>
void launch_gemm(const P& p, MathMode mode, cudaStream_t s) {
  if (p.M <= 0 || p.N <= 0) return;
  if (mode == MathMode::fp32)
    launch_tiled_gemm<DefaultTile>(p, s);
  else
    launch_tc_gemm(p, mode, 1, p.K, s);
}

#endif

}  // namespace safnet::cuda
