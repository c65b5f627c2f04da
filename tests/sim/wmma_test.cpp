// The simulator's WMMA (cuda/sim/wmma.h): TF32 and BF16 rounding as the hardware does it, checked
// against roundings computed here another way; mma_sync products exact and summed with one
// rounding; memory layouts; and the rules a warp must keep: all 32 lanes converged, one pointer,
// 256-bit alignment, full warps.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/launch.h"
#include "cuda/wmma.h"
#include "tests/sim/sim_error.h"

namespace {

namespace wmma = nvcuda::wmma;
using Vec = std::vector<float>;

enum class Kind { tf32, tf32_unrounded, bf16 };

// One warp: d (16 x 16) = a (16 x K) b (K x 16) + c, all row-major in global memory, except b read
// through a col_major fragment from b^T when `b_transposed`, and d stored column-major when `d_cols`.
template <Kind kKind>
__global__ void mma_tile_kernel(const float* a, const float* b, const float* c, float* d, bool b_transposed,
                                bool d_cols) {
  constexpr int K = kKind == Kind::bf16 ? 16 : 8;
  using T = std::conditional_t<kKind == Kind::bf16, __nv_bfloat16, wmma::precision::tf32>;
  using E = std::conditional_t<kKind == Kind::bf16, __nv_bfloat16, float>;
  __shared__ __align__(32) E as[16 * K];
  __shared__ __align__(32) E bs[K * 16];
  for (int i = threadIdx.x; i < 16 * K; i += 32) {
    if constexpr (kKind == Kind::bf16) {
      as[i] = __float2bfloat16_rn(a[i]);
      bs[i] = __float2bfloat16_rn(b[i]);
    } else {
      as[i] = a[i];
      bs[i] = b[i];
    }
  }
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, K, T, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, K, T, wmma::row_major> fb;
  wmma::fragment<wmma::matrix_b, 16, 16, K, T, wmma::col_major> fbt;
  wmma::fragment<wmma::accumulator, 16, 16, K, float> acc;
  wmma::load_matrix_sync(fa, as, K);
  wmma::load_matrix_sync(acc, c, 16, wmma::mem_row_major);
  if constexpr (kKind == Kind::tf32)
    for (int i = 0; i < fa.num_elements; ++i) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
  if (b_transposed) {
    wmma::load_matrix_sync(fbt, bs, K);
    if constexpr (kKind == Kind::tf32)
      for (int i = 0; i < fbt.num_elements; ++i) fbt.x[i] = wmma::__float_to_tf32(fbt.x[i]);
    wmma::mma_sync(acc, fa, fbt, acc);
  } else {
    wmma::load_matrix_sync(fb, bs, 16);
    if constexpr (kKind == Kind::tf32)
      for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
    wmma::mma_sync(acc, fa, fb, acc);
  }
  wmma::store_matrix_sync(d, acc, 16, d_cols ? wmma::mem_col_major : wmma::mem_row_major);
}

// Rounding to `bits` mantissa bits computed in double: nearest with ties away from zero
// (std::round) for cvt.rna.tf32, ties to even (nearbyint in the default mode) for bf16.
// Below 2^-126 the spacing stays that of the smallest normal.
double ulp_at(float x, int bits) { return std::ldexp(1.0, std::max(std::ilogb(x), -126) - bits); }
double round_to_bits(float x, int bits, bool ties_away) {
  if (x == 0 || !std::isfinite(x)) return x;
  const double ulp = ulp_at(x, bits);
  return (ties_away ? std::round(x / ulp) : std::nearbyint(x / ulp)) * ulp;
}
double truncate_to_bits(float x, int bits) {
  if (x == 0) return x;
  const double ulp = ulp_at(x, bits);
  return std::trunc(x / ulp) * ulp;
}

float tf32_of(float x) { return wmma::__float_to_tf32(x); }

TEST(SimWmma, Tf32RoundsToNearestTiesAwayFromZero) {
  const float one = 1.0f, e11 = 0x1p-11f;
  EXPECT_EQ(tf32_of(one + e11), one + 2 * e11) << "a tie goes away from zero";
  EXPECT_EQ(tf32_of(-(one + e11)), -(one + 2 * e11));
  EXPECT_EQ(tf32_of(one + 3 * e11), one + 4 * e11) << "away, not to even";
  EXPECT_EQ(tf32_of(std::nextafter(one + e11, 0.0f)), one);
  EXPECT_EQ(tf32_of(0x1.fffffep127f), INFINITY) << "rounds past the largest tf32";
  EXPECT_EQ(tf32_of(INFINITY), INFINITY);
  EXPECT_TRUE(std::isnan(tf32_of(NAN)));
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()) & 0xbfffffffu);  // finite, |x| < 2
    const float r = tf32_of(x);
    ASSERT_EQ(std::bit_cast<std::uint32_t>(r) & 0x1fffu, 0u) << x;
    if (x != 0) ASSERT_EQ(static_cast<double>(r), round_to_bits(x, 10, true)) << x;
  }
}

struct Tile {
  Vec a, b, c;
};
Tile random_tile(int k, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-2.0f, 2.0f);
  Tile t{Vec(16 * k), Vec(k * 16), Vec(256)};
  for (auto* v : {&t.a, &t.b, &t.c})
    for (float& x : *v) x = d(rng);
  return t;
}

template <Kind kKind>
Vec run_tile(const Tile& t, bool b_transposed, bool d_cols) {
  constexpr int K = kKind == Kind::bf16 ? 16 : 8;
  Vec b = t.b;
  if (b_transposed)
    for (int k = 0; k < K; ++k)
      for (int n = 0; n < 16; ++n) b[n * K + k] = t.b[k * 16 + n];
  auto up = [](const Vec& v) {
    void* p = nullptr;
    SAFNET_CUDA_CHECK(cudaMalloc(&p, v.size() * sizeof(float)));
    SAFNET_CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice));
    return static_cast<float*>(p);
  };
  float *a = up(t.a), *bd = up(b), *c = up(t.c), *d = up(Vec(256));
  SAFNET_LAUNCH(mma_tile_kernel<kKind>, 1, 32, 0, nullptr, a, bd, c, d, b_transposed, d_cols);
  Vec out(256);
  SAFNET_CUDA_CHECK(cudaMemcpy(out.data(), d, 256 * sizeof(float), cudaMemcpyDeviceToHost));
  for (float* p : {a, bd, c, d}) cudaFree(p);
  if (d_cols) {
    Vec rows(256);
    for (int i = 0; i < 16; ++i)
      for (int j = 0; j < 16; ++j) rows[i * 16 + j] = out[j * 16 + i];
    return rows;
  }
  return out;
}

// d = fl(c + sum of exact products of the operands as `operand` reads them): one rounding.
Vec reference(const Tile& t, int k, const std::function<double(float)>& operand) {
  Vec d(256);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      double s = t.c[i * 16 + j];
      for (int q = 0; q < k; ++q) s += operand(t.a[i * k + q]) * operand(t.b[q * 16 + j]);
      d[i * 16 + j] = static_cast<float>(s);
    }
  return d;
}

TEST(SimWmma, Tf32MmaRoundsInputsAndSumsExactProducts) {
  const Tile t = random_tile(8, 1);
  const Vec want = reference(t, 8, [](float x) { return round_to_bits(x, 10, true); });
  for (const bool bt : {false, true})
    for (const bool dc : {false, true}) EXPECT_EQ(run_tile<Kind::tf32>(t, bt, dc), want) << bt << dc;
  // Not the f32 products: the rounding of the inputs shows.
  EXPECT_NE(want, reference(t, 8, [](float x) { return double{x}; }));
}

TEST(SimWmma, Tf32MmaTruncatesUnroundedInputsAsTheTensorCoreReadsThem) {
  const Tile t = random_tile(8, 2);
  EXPECT_EQ(run_tile<Kind::tf32_unrounded>(t, false, false), reference(t, 8, [](float x) { return truncate_to_bits(x, 10); }));
}

TEST(SimWmma, Bf16MmaRoundsInputsToNearestEven) {
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  Tile t = random_tile(16, 3);
  t.a[0] = 1.0f + 0x1p-8f;               // a tie: to even, 1
  t.a[1] = 1.0f + 3 * 0x1p-8f;           // a tie: to even, 1 + 2^-6
  EXPECT_EQ(__bfloat162float(__float2bfloat16_rn(t.a[0])), 1.0f);
  EXPECT_EQ(__bfloat162float(__float2bfloat16_rn(t.a[1])), 1.0f + 0x1p-6f);
  const Vec want = reference(t, 16, [](float x) { return round_to_bits(x, 7, false); });
  EXPECT_EQ(run_tile<Kind::bf16>(t, false, false), want);
  EXPECT_EQ(run_tile<Kind::bf16>(t, true, true), want);
}

// ---- the warp's rules --------------------------------------------------------------------

using Frag = wmma::fragment<wmma::accumulator, 16, 16, 8, float>;

__global__ void half_warp_mma_kernel(float* d) {
  __shared__ __align__(32) float s[16 * 8];
  for (int i = threadIdx.x; i < 128; i += blockDim.x) s[i] = 1.0f;
  __syncthreads();
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
  Frag acc;
  wmma::fill_fragment(acc, 0.0f);
  wmma::load_matrix_sync(a, s, 8);
  wmma::load_matrix_sync(b, s, 16);
  if (threadIdx.x % 32 < 16) wmma::mma_sync(acc, a, b, acc);  // only half the warp
  if (threadIdx.x % 32 < 16) wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

__global__ void lane_pointer_store_kernel(float* d) {
  Frag acc;
  wmma::fill_fragment(acc, 1.0f);
  wmma::store_matrix_sync(d + (threadIdx.x == 5 ? 256 : 0), acc, 16, wmma::mem_row_major);
}

__global__ void store_kernel(float* d, unsigned ldm) {
  Frag acc;
  wmma::fill_fragment(acc, 1.0f);
  wmma::store_matrix_sync(d, acc, ldm, wmma::mem_row_major);
}

using safnet::test::sim_error_of;

struct DeviceOut {
  float* p = nullptr;
  DeviceOut() {
    void* q = nullptr;
    SAFNET_CUDA_CHECK(cudaMalloc(&q, 1024 * sizeof(float)));
    p = static_cast<float*>(q);
  }
  ~DeviceOut() { cudaFree(p); }
};

TEST(SimWmma, AllLanesMustCallConverged) {
  DeviceOut d;
  const std::string msg = sim_error_of([&] { SAFNET_LAUNCH(half_warp_mma_kernel, 1, 64, 0, nullptr, d.p); });
  EXPECT_NE(msg.find("wmma::"), std::string::npos) << msg;
  EXPECT_NE(msg.find("half_warp_mma_kernel"), std::string::npos) << msg;
}

TEST(SimWmma, LanesMustPassOnePointer) {
  DeviceOut d;
  const std::string msg = sim_error_of([&] { SAFNET_LAUNCH(lane_pointer_store_kernel, 1, 32, 0, nullptr, d.p); });
  EXPECT_NE(msg.find("lanes 0 and 5 pass different pointers"), std::string::npos) << msg;
}

TEST(SimWmma, PointerAndLdmMustBeAligned) {
  DeviceOut d;
  std::string msg = sim_error_of([&] { SAFNET_LAUNCH(store_kernel, 1, 32, 0, nullptr, d.p + 4, 16u); });
  EXPECT_NE(msg.find("not 256-bit aligned"), std::string::npos) << msg;
  msg = sim_error_of([&] { SAFNET_LAUNCH(store_kernel, 1, 32, 0, nullptr, d.p, 18u); });
  EXPECT_NE(msg.find("ldm 18 is not a multiple of 16 bytes"), std::string::npos) << msg;
  EXPECT_EQ(sim_error_of([&] { SAFNET_LAUNCH(store_kernel, 1, 32, 0, nullptr, d.p, 20u); }), "");
}

TEST(SimWmma, PartialWarpsAreRefused) {
  DeviceOut d;
  const std::string msg = sim_error_of([&] { SAFNET_LAUNCH(store_kernel, 1, 48, 0, nullptr, d.p, 16u); });
  EXPECT_NE(msg.find("fewer than 32 threads"), std::string::npos) << msg;
}

}  // namespace
