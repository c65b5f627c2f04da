// The CUDA kernel language on the host compiler: qualifiers, built-in index variables bound to the
// current simulated thread, barriers, warp intrinsics, atomics and math intrinsics.
#pragma once
#include <math.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "cuda/sim/exec.h"
#include "cuda/sim/runtime.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __constant__
#define __managed__
#define __grid_constant__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one object per kernel shared by all fibers of the running block. Blocks run
// one at a time, so each block has the array to itself; contents left by the previous block stay
// (a kernel must not read shared memory it did not write, exactly as on the GPU).
#define __shared__ static

#define threadIdx (*::safnet::sim::detail::t_thread_idx)
#define blockIdx (static_cast<const uint3&>(::safnet::sim::detail::t_block.block_idx))
#define blockDim (static_cast<const dim3&>(::safnet::sim::detail::t_block.block_dim))
#define gridDim (static_cast<const dim3&>(::safnet::sim::detail::t_block.grid_dim))
constexpr int warpSize = 32;

// ---- block barriers -------------------------------------------------------------------------

inline void __syncthreads(std::source_location loc = std::source_location::current()) {
  ::safnet::sim::detail::block_barrier(0, 0, loc);
}
inline int __syncthreads_count(int pred, std::source_location loc = std::source_location::current()) {
  return ::safnet::sim::detail::block_barrier(pred, 1, loc);
}
inline int __syncthreads_and(int pred, std::source_location loc = std::source_location::current()) {
  return ::safnet::sim::detail::block_barrier(pred, 2, loc);
}
inline int __syncthreads_or(int pred, std::source_location loc = std::source_location::current()) {
  return ::safnet::sim::detail::block_barrier(pred, 3, loc);
}
// Blocks run alone and memory is coherent, so fences order nothing more than program order does.
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

// ---- warp intrinsics ------------------------------------------------------------------------

namespace safnet::sim::detail {

inline void check_width(int width, const char* name) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    kernel_fail(std::string(name) + " with width " + std::to_string(width) +
                " (must be a power of two up to 32)");
}

template <typename T>
T shfl(const char* name, unsigned mask, T var, int src, const std::source_location& loc) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16, "shuffled type too large");
  T out;
  warp_exchange(WarpOp::shfl, name, mask, &var, sizeof(T), src, 0, &out, loc);
  return out;
}

inline unsigned vote(WarpOp op, const char* name, unsigned mask, int pred,
                     const std::source_location& loc) {
  unsigned out = 0;
  warp_exchange(op, name, mask, nullptr, 0, 0, pred, &out, loc);
  return out;
}

}  // namespace safnet::sim::detail

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32,
              std::source_location loc = std::source_location::current()) {
  ::safnet::sim::detail::check_width(width, "__shfl_sync");
  const int lane = static_cast<int>(::safnet::sim::detail::lane_id());
  const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return ::safnet::sim::detail::shfl("__shfl_sync", mask, var, src, loc);
}

template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                 std::source_location loc = std::source_location::current()) {
  ::safnet::sim::detail::check_width(width, "__shfl_up_sync");
  const int lane = static_cast<int>(::safnet::sim::detail::lane_id());
  const int src = (lane & (width - 1)) >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : lane;
  return ::safnet::sim::detail::shfl("__shfl_up_sync", mask, var, src, loc);
}

template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                   std::source_location loc = std::source_location::current()) {
  ::safnet::sim::detail::check_width(width, "__shfl_down_sync");
  const int lane = static_cast<int>(::safnet::sim::detail::lane_id());
  const int src = (lane & (width - 1)) + static_cast<long long>(delta) < width
                      ? lane + static_cast<int>(delta)
                      : lane;
  return ::safnet::sim::detail::shfl("__shfl_down_sync", mask, var, src, loc);
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                  std::source_location loc = std::source_location::current()) {
  ::safnet::sim::detail::check_width(width, "__shfl_xor_sync");
  const int lane = static_cast<int>(::safnet::sim::detail::lane_id());
  // A lane may read earlier width-groups but reads its own value instead of a later group.
  const int src = lane ^ (lane_mask & 31);
  const int end = (lane & ~(width - 1)) + width;
  return ::safnet::sim::detail::shfl("__shfl_xor_sync", mask, var, src < end ? src : lane, loc);
}

inline unsigned __ballot_sync(unsigned mask, int pred,
                              std::source_location loc = std::source_location::current()) {
  return ::safnet::sim::detail::vote(::safnet::sim::detail::WarpOp::ballot, "__ballot_sync", mask,
                                     pred, loc);
}
inline int __any_sync(unsigned mask, int pred,
                      std::source_location loc = std::source_location::current()) {
  return static_cast<int>(::safnet::sim::detail::vote(::safnet::sim::detail::WarpOp::any,
                                                      "__any_sync", mask, pred, loc));
}
inline int __all_sync(unsigned mask, int pred,
                      std::source_location loc = std::source_location::current()) {
  return static_cast<int>(::safnet::sim::detail::vote(::safnet::sim::detail::WarpOp::all,
                                                      "__all_sync", mask, pred, loc));
}
inline void __syncwarp(unsigned mask = 0xffffffffu,
                       std::source_location loc = std::source_location::current()) {
  ::safnet::sim::detail::warp_exchange(::safnet::sim::detail::WarpOp::sync, "__syncwarp", mask,
                                       nullptr, 0, 0, 0, nullptr, loc);
}

// ---- atomics: plain read-modify-write, since fibers only switch at barriers ---------------

#define SAFNET_SIM_ATOMIC2(name, T, expr)        \
  inline T name(T* address, T val) {             \
    T old = *address;                            \
    *address = (expr);                           \
    return old;                                  \
  }
#define SAFNET_SIM_ATOMIC_INTS(name, expr)                      \
  SAFNET_SIM_ATOMIC2(name, int, expr)                           \
  SAFNET_SIM_ATOMIC2(name, unsigned int, expr)                  \
  SAFNET_SIM_ATOMIC2(name, unsigned long long, expr)

SAFNET_SIM_ATOMIC_INTS(atomicAdd, old + val)
SAFNET_SIM_ATOMIC2(atomicAdd, float, old + val)
SAFNET_SIM_ATOMIC2(atomicAdd, double, old + val)
SAFNET_SIM_ATOMIC2(atomicSub, int, old - val)
SAFNET_SIM_ATOMIC2(atomicSub, unsigned int, old - val)
SAFNET_SIM_ATOMIC_INTS(atomicMax, old < val ? val : old)
SAFNET_SIM_ATOMIC2(atomicMax, long long, old < val ? val : old)
SAFNET_SIM_ATOMIC_INTS(atomicMin, val < old ? val : old)
SAFNET_SIM_ATOMIC2(atomicMin, long long, val < old ? val : old)
SAFNET_SIM_ATOMIC_INTS(atomicExch, val)
SAFNET_SIM_ATOMIC2(atomicExch, float, val)
SAFNET_SIM_ATOMIC_INTS(atomicOr, old | val)
SAFNET_SIM_ATOMIC_INTS(atomicAnd, old & val)
SAFNET_SIM_ATOMIC_INTS(atomicXor, old ^ val)
SAFNET_SIM_ATOMIC2(atomicInc, unsigned int, old >= val ? 0u : old + 1)
SAFNET_SIM_ATOMIC2(atomicDec, unsigned int, (old == 0 || old > val) ? val : old - 1)
#undef SAFNET_SIM_ATOMIC_INTS
#undef SAFNET_SIM_ATOMIC2

#define SAFNET_SIM_ATOMIC_CAS(T)                          \
  inline T atomicCAS(T* address, T compare, T val) {      \
    T old = *address;                                     \
    if (old == compare) *address = val;                   \
    return old;                                           \
  }
SAFNET_SIM_ATOMIC_CAS(int)
SAFNET_SIM_ATOMIC_CAS(unsigned int)
SAFNET_SIM_ATOMIC_CAS(unsigned long long)
SAFNET_SIM_ATOMIC_CAS(unsigned short)
#undef SAFNET_SIM_ATOMIC_CAS

// ---- math and bit intrinsics ----------------------------------------------------------------
// The fast-math forms (__expf, __fdividef, ...) compute the exact libm result here; on the GPU they
// are approximations, so tests comparing the two need the documented ulp tolerance of the GPU form.

inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }

inline unsigned int __float_as_uint(float x) { return std::bit_cast<unsigned int>(x); }
inline float __uint_as_float(unsigned int x) { return std::bit_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }

inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(floorf(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(ceilf(x)); }
inline unsigned int __float2uint_rn(float x) { return static_cast<unsigned int>(nearbyintf(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __uint2float_rn(unsigned int x) { return static_cast<float>(x); }

inline int __popc(unsigned int x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned int>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned int>(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline int __mul24(int a, int b) {
  return static_cast<int>(static_cast<long long>(a << 8 >> 8) * (b << 8 >> 8));
}
inline unsigned int __umul24(unsigned int a, unsigned int b) { return (a & 0xffffffu) * (b & 0xffffffu); }
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return static_cast<unsigned int>((static_cast<unsigned long long>(a) * b) >> 32);
}
template <typename T>
inline T __ldg(const T* p) { return *p; }

// CUDA's integer and floating min/max overloads; mixed types take the common type, as CUDA does.
#define SAFNET_SIM_MINMAX(T)                           \
  inline T min(T a, T b) { return b < a ? b : a; }     \
  inline T max(T a, T b) { return a < b ? b : a; }
SAFNET_SIM_MINMAX(int)
SAFNET_SIM_MINMAX(unsigned int)
SAFNET_SIM_MINMAX(long)
SAFNET_SIM_MINMAX(unsigned long)
SAFNET_SIM_MINMAX(long long)
SAFNET_SIM_MINMAX(unsigned long long)
#undef SAFNET_SIM_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
template <typename A, typename B>
  requires(std::is_arithmetic_v<A> && std::is_arithmetic_v<B> && !std::is_same_v<A, B>)
inline std::common_type_t<A, B> min(A a, B b) {
  return min(static_cast<std::common_type_t<A, B>>(a), static_cast<std::common_type_t<A, B>>(b));
}
template <typename A, typename B>
  requires(std::is_arithmetic_v<A> && std::is_arithmetic_v<B> && !std::is_same_v<A, B>)
inline std::common_type_t<A, B> max(A a, B b) {
  return max(static_cast<std::common_type_t<A, B>>(a), static_cast<std::common_type_t<A, B>>(b));
}
