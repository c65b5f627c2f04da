// cp.async on the simulator (cuda/cp_async.h): a double-buffered kernel is right under every
// schedule, and each way of misusing the copies gives a wrong result or stops the kernel: reading
// before the wait, a missing barrier after the wait or before the refill, a barrier taken for a
// wait, wait_group counting only committed groups, bad sizes, alignment, addresses, overlapping
// copies and copies never waited for.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <source_location>
#include <string>
#include <vector>

#include "cuda/cp_async.h"
#include "cuda/cuda_check.h"
#include "cuda/launch.h"
#include "tests/sim/sim_error.h"

namespace {

using safnet::test::sim_error_of;

constexpr int kThreads = 64;
constexpr int kTileFloats = kThreads * 4;  // one 16-byte copy per thread and tile

enum class Mistake { none, read_before_wait, no_barrier_after_wait, no_barrier_before_refill };

// sums[i] = the sum over tiles of the four floats thread i + 1 (wrapping) copied: each thread reads
// what another one copied, so the barriers matter. Two buffers: the next tile's copy is in flight
// while this one is read; past the last tile the copy is predicated off (zero-fill, no read).
__global__ void tiled_sum_kernel(const float* x, int tiles, float* sums, Mistake mistake) {
  __shared__ __align__(16) float buf[2][kTileFloats];
  const int mine = threadIdx.x * 4;
  const int neighbours = (threadIdx.x + 1) % kThreads * 4;
  safnet::cp_async<16>(&buf[0][mine], x + mine, true);
  safnet::cp_async_commit();
  float acc = 0.0f;
  for (int t = 0; t < tiles; ++t) {
    safnet::cp_async<16>(&buf[(t + 1) % 2][mine], x + (t + 1) * kTileFloats + mine, t + 1 < tiles);
    safnet::cp_async_commit();
    if (mistake != Mistake::read_before_wait) safnet::cp_async_wait<1>();  // tile t has landed
    if (mistake != Mistake::no_barrier_after_wait) __syncthreads();  // ... for every thread
    for (int k = 0; k < 4; ++k) acc += buf[t % 2][neighbours + k];
    if (mistake == Mistake::read_before_wait) safnet::cp_async_wait<1>();
    if (mistake != Mistake::no_barrier_before_refill) __syncthreads();  // all read before refill
  }
  safnet::cp_async_wait<0>();
  sums[threadIdx.x] = acc;
}

float* device_copy(const std::vector<float>& host) {
  float* p = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), host.size() * sizeof(float)));
  SAFNET_CUDA_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  return p;
}

std::vector<float> host_copy(const float* p, std::size_t n) {
  std::vector<float> host(n);
  SAFNET_CUDA_CHECK(cudaMemcpy(host.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
  return host;
}

// Floats in device memory, holding small integers (i mod 97) so that every sum is exact.
struct DeviceFloats {
  std::vector<float> host;
  float* dev;
  explicit DeviceFloats(int n) : host(n) {
    for (int i = 0; i < n; ++i) host[i] = static_cast<float>(i % 97);
    dev = device_copy(host);
  }
  ~DeviceFloats() { cudaFree(dev); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
};

// Runs tiled_sum_kernel under `seed`; true when every thread's sum is right.
bool tiled_sum_is_right(Mistake mistake, std::uint64_t seed) {
  constexpr int tiles = 5;
  DeviceFloats x(tiles * kTileFloats);
  DeviceFloats sums(kThreads);
  const std::uint64_t saved = safnet::sim::schedule_seed();
  safnet::sim::set_schedule_seed(seed);
  SAFNET_LAUNCH(tiled_sum_kernel, 1, kThreads, 0, nullptr, x.dev, tiles, sums.dev, mistake);
  safnet::sim::set_schedule_seed(saved);
  const std::vector<float> got = host_copy(sums.dev, kThreads);
  for (int i = 0; i < kThreads; ++i) {
    float want = 0.0f;
    for (int t = 0; t < tiles; ++t)
      for (int k = 0; k < 4; ++k) want += x.host[t * kTileFloats + (i + 1) % kThreads * 4 + k];
    if (got[i] != want) return false;
  }
  return true;
}

const std::uint64_t kSeeds[] = {1, 2, 3, 0x9e3779b97f4a7c15ull, 12345};

TEST(CpAsync, DoubleBufferedSumIsRightUnderEverySchedule) {
  for (std::uint64_t seed : kSeeds) EXPECT_TRUE(tiled_sum_is_right(Mistake::none, seed)) << seed;
}

TEST(CpAsync, ReadingBeforeTheWaitReadsPoison) {
  for (std::uint64_t seed : kSeeds)
    EXPECT_FALSE(tiled_sum_is_right(Mistake::read_before_wait, seed)) << seed;
}

bool wrong_under_some_seed(Mistake mistake) {
  for (std::uint64_t seed : kSeeds)
    if (!tiled_sum_is_right(mistake, seed)) return true;
  return false;
}

TEST(CpAsync, MissingBarrierAfterTheWaitIsARace) {
  EXPECT_TRUE(wrong_under_some_seed(Mistake::no_barrier_after_wait));
}

TEST(CpAsync, MissingBarrierBeforeTheRefillIsARace) {
  EXPECT_TRUE(wrong_under_some_seed(Mistake::no_barrier_before_refill));
}

constexpr std::uint32_t kPoison = 0xffffffffu;

std::uint32_t bits(float v) { return std::bit_cast<std::uint32_t>(v); }

// One thread, three groups: copies into s[0..3] (committed first), s[4..7] (committed second) and
// s[8..11] (never committed before wait_all). out holds s after wait<1>, wait<0> and wait_all.
__global__ void wait_count_kernel(const float* x, float* out) {
  __shared__ __align__(16) float s[12];
  safnet::cp_async<16>(s, x, true);
  safnet::cp_async_commit();
  safnet::cp_async<8>(s + 4, x + 4, true);
  safnet::cp_async<8>(s + 6, x + 6, true);
  safnet::cp_async_commit();
  safnet::cp_async<4>(s + 8, x + 8, true);
  safnet::cp_async<4>(s + 9, x + 9, true);
  safnet::cp_async<8>(s + 10, x + 10, true);
  safnet::cp_async_wait<1>();
  for (int i = 0; i < 12; ++i) out[i] = s[i];
  safnet::cp_async_wait<0>();
  for (int i = 0; i < 12; ++i) out[12 + i] = s[i];
  safnet::cp_async_wait_all();
  for (int i = 0; i < 12; ++i) out[24 + i] = s[i];
}

TEST(CpAsync, WaitGroupLeavesTheNewestCommittedGroupsAndTheOpenOnePending) {
  DeviceFloats x(12), out(36);
  SAFNET_LAUNCH(wait_count_kernel, 1, 1, 0, nullptr, x.dev, out.dev);
  const std::vector<float> got = host_copy(out.dev, 36);
  for (int i = 0; i < 12; ++i) {
    SCOPED_TRACE(i);
    // wait<1>: the first group landed; the second and the uncommitted copies are still poison.
    if (i < 4)
      EXPECT_EQ(got[i], x.host[i]);
    else
      EXPECT_EQ(bits(got[i]), kPoison);
    // wait<0>: both committed groups landed; wait_group never covers uncommitted copies.
    if (i < 8)
      EXPECT_EQ(got[12 + i], x.host[i]);
    else
      EXPECT_EQ(bits(got[12 + i]), kPoison);
    EXPECT_EQ(got[24 + i], x.host[i]);  // wait_all commits first
  }
}

// A predicated-off copy with a source past the end of x: no read, zeros once waited for.
__global__ void zero_fill_kernel(const float* x, int n, float* out) {
  __shared__ __align__(16) float s[4];
  for (int i = 0; i < 4; ++i) s[i] = 5.0f;
  safnet::cp_async<16>(s, x + n, false);
  out[0] = s[0];
  safnet::cp_async_wait_all();
  for (int i = 0; i < 4; ++i) out[1 + i] = s[i];
}

TEST(CpAsync, PredicatedOffCopiesReadNothingAndWriteZeros) {
  DeviceFloats x(8), out(5);
  SAFNET_LAUNCH(zero_fill_kernel, 1, 1, 0, nullptr, x.dev, 8, out.dev);
  const std::vector<float> got = host_copy(out.dev, 5);
  EXPECT_EQ(bits(got[0]), kPoison);
  for (int i = 1; i < 5; ++i) EXPECT_EQ(got[i], 0.0f) << i;
}

// Thread 0 copies into dynamic shared memory, thread 1 reads it: after a barrier alone it reads
// poison, after thread 0's wait and a barrier the data.
__global__ void barrier_visibility_kernel(const float* x, float* out) {
  SAFNET_DYNAMIC_SHARED(float, s);
  if (threadIdx.x == 0) {
    safnet::cp_async<16>(s, x, true);
    safnet::cp_async_commit();
  }
  __syncthreads();
  if (threadIdx.x == 1) out[0] = s[0];
  __syncthreads();
  if (threadIdx.x == 0) safnet::cp_async_wait<0>();
  __syncthreads();
  if (threadIdx.x == 1) out[1] = s[0];
}

TEST(CpAsync, ABarrierCompletesNoCopy) {
  DeviceFloats x(4), out(2);
  x.host[0] = 7.0f;
  SAFNET_CUDA_CHECK(cudaMemcpy(x.dev, x.host.data(), 4 * sizeof(float), cudaMemcpyHostToDevice));
  SAFNET_LAUNCH(barrier_visibility_kernel, 1, 2, 16, nullptr, x.dev, out.dev);
  const std::vector<float> got = host_copy(out.dev, 2);
  EXPECT_EQ(bits(got[0]), kPoison);
  EXPECT_EQ(got[1], 7.0f);
}

enum class Misuse {
  size,
  dst_misaligned,
  src_misaligned,
  src_shared,
  src_past_end,
  dst_global,
  dst_local,
  overlap,
  never_waited,
  never_committed,
};

// One misuse per launch, by one thread; x holds 8 floats, out 8.
__global__ void misuse_kernel(const float* x, float* out, Misuse misuse) {
  __shared__ __align__(16) float s[8];
  alignas(16) float local[4];
  switch (misuse) {
    case Misuse::size:
      safnet::sim::detail::cp_async_issue(s, x, 12, true, std::source_location::current());
      break;
    case Misuse::dst_misaligned: safnet::cp_async<16>(s + 2, x, true); break;
    case Misuse::src_misaligned: safnet::cp_async<8>(s, x + 1, true); break;
    case Misuse::src_shared: safnet::cp_async<16>(s, s + 4, true); break;
    case Misuse::src_past_end: safnet::cp_async<16>(s, x + 8, true); break;
    case Misuse::dst_global: safnet::cp_async<16>(out, x, true); break;
    case Misuse::dst_local:
      safnet::cp_async<16>(local, x, true);
      out[0] = local[0];
      break;
    case Misuse::overlap:
      safnet::cp_async<16>(s, x, true);
      safnet::cp_async_commit();
      safnet::cp_async<8>(s + 2, x + 4, true);
      break;
    case Misuse::never_waited:
      safnet::cp_async<16>(s, x, true);
      safnet::cp_async_commit();
      return;
    case Misuse::never_committed:
      safnet::cp_async<16>(s, x, true);
      safnet::cp_async_wait<0>();
      return;
  }
  safnet::cp_async_wait_all();
}

std::string misuse_message(Misuse misuse) {
  DeviceFloats x(8), out(8);
  const std::string msg = sim_error_of(
      [&] { SAFNET_LAUNCH(misuse_kernel, 1, 1, 0, nullptr, x.dev, out.dev, misuse); });
  // The simulator runs the next kernel cleanly: no copy state survives a stopped kernel.
  EXPECT_TRUE(tiled_sum_is_right(Mistake::none, 1));
  return msg;
}

struct MisuseCase {
  Misuse misuse;
  const char* name;
  const char* says;
};

const MisuseCase kMisuses[] = {
    // The template refuses other sizes at compile time; the simulator's entry point checks too.
    {Misuse::size, "size", "copies 12 bytes (cp-size must be 4, 8 or 16)"},
    {Misuse::dst_misaligned, "dst_misaligned", "is not aligned to its 16 bytes"},
    {Misuse::src_misaligned, "src_misaligned", "is not aligned to its 8 bytes"},
    {Misuse::src_shared, "src_shared", "is not 16 bytes inside a live cudaMalloc allocation"},
    {Misuse::src_past_end, "src_past_end", "is not 16 bytes inside a live cudaMalloc allocation"},
    {Misuse::dst_global, "dst_global", "is global memory, not shared memory"},
    {Misuse::dst_local, "dst_local", "is not shared memory (neither a __shared__ array"},
    {Misuse::overlap, "overlap", "overlaps a copy still pending from "},
    {Misuse::never_waited, "never_waited", "the thread ends with 1 cp.async copy not waited for"},
    {Misuse::never_committed, "never_committed", "(1 never committed, first issued at "},
};

TEST(CpAsync, EachMisuseStopsTheKernelNamingThreadAndCallSite) {
  for (const MisuseCase& c : kMisuses) {
    SCOPED_TRACE(c.name);
    const std::string msg = misuse_message(c.misuse);
    EXPECT_NE(msg.find("kernel 'misuse_kernel' block (0,0,0): thread (0,0,0): "), std::string::npos) << msg;
    EXPECT_NE(msg.find("cp_async_test.cpp:"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.says), std::string::npos) << msg;
  }
}

}  // namespace
