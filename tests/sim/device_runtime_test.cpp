// The device runtime on the simulator: caching allocator, streams and events, NVTX ranges, pinned
// buffers and device selection.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cuda/device/allocator.h"
#include "cuda/device/nvtx.h"
#include "cuda/device/pinned.h"
#include "cuda/device/select.h"
#include "cuda/device/stream.h"
#include "cuda/kernels/elementwise.h"
#include "cuda/sim/nvtx.h"

namespace {

using safnet::CudaError;
using safnet::cuda::CachingAllocator;

std::size_t device_bytes_used() {
  std::size_t free_bytes = 0, total = 0;
  SAFNET_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  return total - free_bytes;
}

// Restores the simulator's unlimited device memory however the test ends.
struct DeviceLimit {
  explicit DeviceLimit(std::size_t bytes) { safnet::sim::set_device_memory_limit(bytes); }
  ~DeviceLimit() { safnet::sim::set_device_memory_limit(0); }
};

TEST(CachingAllocator, SizeClassesWasteAtMostAnEighthAboveTheSmallStep) {
  EXPECT_EQ(CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(CachingAllocator::round_size(512), 512u);
  EXPECT_EQ(CachingAllocator::round_size(513), 1024u);
  EXPECT_EQ(CachingAllocator::round_size(1 << 20), std::size_t{1} << 20);
  EXPECT_EQ(CachingAllocator::round_size((1 << 20) + 1), (std::size_t{1} << 20) + (128 << 10));
  EXPECT_EQ(CachingAllocator::round_size(std::size_t{3} << 30), std::size_t{3} << 30);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const std::size_t b = 1 + rng() % (std::size_t{1} << (1 + rng() % 40));
    const std::size_t r = CachingAllocator::round_size(b);
    ASSERT_GE(r, b);
    ASSERT_EQ(r % 512, 0u) << b;
    ASSERT_LT(r - b, std::max<std::size_t>(512, b / 8 + 1)) << b;
    ASSERT_EQ(CachingAllocator::round_size(r), r) << "a class is its own class: " << b;
  }
}

TEST(CachingAllocator, BlocksAreAlignedDistinctAndUsableToTheirRequestedSize) {
  safnet::cuda::Stream stream;
  CachingAllocator alloc(stream.get());
  std::vector<std::pair<char*, std::size_t>> blocks;
  for (std::size_t bytes : {1, 100, 256, 257, 511, 4096, 5000, 70000, (1 << 20) + 3})
    blocks.emplace_back(static_cast<char*>(alloc.allocate(bytes)), bytes);
  std::sort(blocks.begin(), blocks.end());
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    auto [p, bytes] = blocks[i];
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 256, 0u) << bytes;
    // The whole rounded block lies in one device allocation.
    EXPECT_EQ(cudaMemset(p, 0x5a, CachingAllocator::round_size(bytes)), cudaSuccess) << bytes;
    if (i + 1 < blocks.size()) {
      EXPECT_LE(p + bytes, blocks[i + 1].first) << "blocks overlap";
    }
  }
  for (auto [p, bytes] : blocks) alloc.release(p);
  EXPECT_EQ(alloc.in_use_bytes(), 0u);
}

TEST(CachingAllocator, ReleasedBlocksServeLaterRequestsOfTheSameClass) {
  safnet::cuda::Stream stream;
  CachingAllocator alloc(stream.get());
  void* a = alloc.allocate(1000);
  EXPECT_EQ(alloc.in_use_bytes(), 1024u);
  EXPECT_EQ(alloc.cached_bytes(), 0u);
  alloc.release(a);
  EXPECT_EQ(alloc.in_use_bytes(), 0u);
  EXPECT_EQ(alloc.cached_bytes(), 1024u);
  const std::size_t used = device_bytes_used();
  void* b = alloc.allocate(600);  // same 1024-byte class
  EXPECT_EQ(b, a);
  EXPECT_EQ(device_bytes_used(), used) << "a cache hit calls no cudaMalloc";
  EXPECT_EQ(alloc.cached_bytes(), 0u);
  void* c = alloc.allocate(2000);
  EXPECT_NE(c, a);
  EXPECT_EQ(alloc.in_use_bytes(), 1024u + 2048u);
  EXPECT_EQ(alloc.peak_bytes(), 1024u + 2048u);
  alloc.release(b);
  alloc.release(c);
  EXPECT_EQ(alloc.peak_bytes(), 1024u + 2048u) << "the peak is a high-water mark";
  EXPECT_EQ(alloc.cached_bytes(), 1024u + 2048u);
}

TEST(CachingAllocator, ZeroBytesAndForeignPointers) {
  safnet::cuda::Stream stream;
  CachingAllocator alloc(stream.get());
  EXPECT_EQ(alloc.allocate(0), nullptr);
  alloc.release(nullptr);
  void* foreign = nullptr;
  ASSERT_EQ(cudaMalloc(&foreign, 512), cudaSuccess);
  EXPECT_THROW(alloc.release(foreign), std::invalid_argument);
  ASSERT_EQ(cudaFree(foreign), cudaSuccess);
  char* p = static_cast<char*>(alloc.allocate(64));
  EXPECT_THROW(alloc.release(p + 1), std::invalid_argument);
  alloc.release(p);
  try {
    alloc.release(p);
    FAIL() << "double release accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("cuda/device/allocator.cpp"), std::string::npos) << e.what();
  }
  EXPECT_EQ(alloc.in_use_bytes(), 0u);
}

TEST(CachingAllocator, EmptyCacheAndDestructorReturnMemoryToTheDevice) {
  const std::size_t before = device_bytes_used();
  {
    safnet::cuda::Stream stream;
    CachingAllocator alloc(stream.get());
    void* a = alloc.allocate(10000);
    void* b = alloc.allocate(3 << 20);
    alloc.release(b);
    EXPECT_GE(device_bytes_used(), before + 10240 + (3 << 20));
    alloc.empty_cache();
    EXPECT_EQ(alloc.cached_bytes(), 0u);
    EXPECT_EQ(alloc.in_use_bytes(), 10240u);
    EXPECT_LT(device_bytes_used(), before + (3 << 20));
    (void)a;  // left in use: the destructor frees it
    alloc.release(alloc.allocate(512));
  }
  EXPECT_EQ(device_bytes_used(), before);
}

TEST(CachingAllocator, OutOfMemoryEmptiesTheCacheRetriesThenThrows) {
  safnet::cuda::Stream stream;
  CachingAllocator alloc(stream.get());
  const DeviceLimit limit(device_bytes_used() + (64 << 10));
  alloc.release(alloc.allocate(40 << 10));
  ASSERT_EQ(alloc.cached_bytes(), std::size_t{40} << 10);
  // 40 KiB cached + 32 KiB new exceeds 64 KiB: only the retry after emptying the cache succeeds.
  void* p = alloc.allocate(32 << 10);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(alloc.cached_bytes(), 0u);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the handled failure is not left pending";
  try {
    alloc.allocate(48 << 10);
    FAIL() << "no throw";
  } catch (const CudaError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "out of device memory: requested 49152 bytes, 32768 in use, peak 40960"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(alloc.in_use_bytes(), std::size_t{32} << 10);
  alloc.release(p);
}

TEST(CachingAllocator, ConcurrentThreadsNeverShareALiveBlock) {
  safnet::cuda::Stream stream;
  CachingAllocator alloc(stream.get());
  std::mutex mutex;
  std::set<void*> live;
  bool shared = false;
  auto work = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<void*> mine;
    for (int i = 0; i < 2000; ++i) {
      if (mine.empty() || rng() % 2 == 0) {
        void* p = alloc.allocate(1 + rng() % 5000);
        std::lock_guard<std::mutex> lock(mutex);
        shared = shared || !live.insert(p).second;
        mine.push_back(p);
      } else {
        void* p = mine.back();
        mine.pop_back();
        {
          std::lock_guard<std::mutex> lock(mutex);
          live.erase(p);
        }
        alloc.release(p);
      }
    }
    for (void* p : mine) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        live.erase(p);
      }
      alloc.release(p);
    }
  };
  std::thread t1(work, 1), t2(work, 2);
  t1.join();
  t2.join();
  EXPECT_FALSE(shared);
  EXPECT_EQ(alloc.in_use_bytes(), 0u);
  EXPECT_GT(alloc.peak_bytes(), 0u);
}

TEST(CachingAllocator, BlocksCarryKernelResultsOnTheirStream) {
  safnet::cuda::Stream stream;
  CachingAllocator alloc(stream.get());
  const int n = 777;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i % 11) - 5.0f;
  auto* dx = static_cast<float*>(alloc.allocate(n * sizeof(float)));
  auto* dy = static_cast<float*>(alloc.allocate(n * sizeof(float)));
  SAFNET_CUDA_CHECK(cudaMemcpyAsync(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice,
                                    stream.get()));
  safnet::cuda::relu_forward(n, dx, dy, stream.get());
  alloc.release(dx);
  // The released input block is reused at once for the next result, in stream order.
  auto* dz = static_cast<float*>(alloc.allocate(n * sizeof(float)));
  EXPECT_EQ(dz, dx);
  safnet::cuda::add_forward(n, dy, dy, dz, stream.get());
  std::vector<float> z(n);
  SAFNET_CUDA_CHECK(cudaMemcpyAsync(z.data(), dz, n * sizeof(float), cudaMemcpyDeviceToHost,
                                    stream.get()));
  stream.synchronize();
  for (int i = 0; i < n; ++i) ASSERT_EQ(z[i], 2.0f * std::max(x[i], 0.0f)) << i;
  alloc.release(dy);
  alloc.release(dz);
}

TEST(DeviceStream, StreamsAndEventsAreCreatedUsedAndDestroyed) {
  cudaStream_t raw = nullptr;
  {
    safnet::cuda::Stream s;
    raw = s.get();
    ASSERT_NE(raw, nullptr);
    s.synchronize();
    safnet::cuda::Stream moved(std::move(s));
    EXPECT_EQ(moved.get(), raw);
    EXPECT_THROW((void)s.get(), std::logic_error);  // NOLINT: use after move is the point
    safnet::cuda::Event a, b;
    a.record(moved.get());
    b.record(moved.get());
    b.synchronize();
    EXPECT_GE(safnet::cuda::Event::elapsed_ms(a, b), 0.0f);
    safnet::cuda::Event untimed(cudaEventDisableTiming);
    untimed.record(moved.get());
    EXPECT_THROW(safnet::cuda::Event::elapsed_ms(a, untimed), CudaError);
    safnet::cuda::Event never;
    EXPECT_THROW(safnet::cuda::Event::elapsed_ms(a, never), CudaError);
    (void)cudaGetLastError();
  }
  EXPECT_EQ(cudaStreamQuery(raw), cudaErrorInvalidResourceHandle) << "the stream was destroyed";
  (void)cudaGetLastError();
}

TEST(DeviceNvtx, RangesNestAndAreNamed) {
  safnet::sim::nvtx_clear();
  {
    safnet::cuda::NvtxRange outer("conv1");
    {
      safnet::cuda::NvtxRange inner("relu");
      safnet::cuda::nvtx_mark("checkpoint");
    }
    safnet::cuda::NvtxRange second("bn1");
  }
  const std::vector<std::string> want = {"push conv1", "push relu", "mark checkpoint", "pop",
                                         "push bn1",   "pop",       "pop"};
  EXPECT_EQ(safnet::sim::nvtx_events(), want);
  safnet::sim::nvtx_clear();
  EXPECT_TRUE(safnet::sim::nvtx_events().empty());
}

TEST(DevicePinned, ResizeKeepsThePrefixAndMovesTransferOwnership) {
  safnet::cuda::PinnedBuffer<float> a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.data(), nullptr);
  a.resize(5);
  for (int i = 0; i < 5; ++i) a[i] = static_cast<float>(i) + 0.5f;
  a.resize(9);
  ASSERT_EQ(a.size(), 9u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a[i], static_cast<float>(i) + 0.5f);
  a.resize(2);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1], 1.5f);
  const float* data = a.data();
  safnet::cuda::PinnedBuffer<float> b(std::move(a));
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(a.size(), 0u);  // NOLINT: moved-from state is specified
  safnet::cuda::PinnedBuffer<float> c(3);
  c = std::move(b);
  EXPECT_EQ(c.data(), data);
  c.resize(0);
  EXPECT_EQ(c.data(), nullptr);
  EXPECT_THROW(c.resize(~std::size_t{0}), std::length_error);
}

TEST(DeviceSelect, TheSimulatorIsOneDevice) {
  EXPECT_EQ(safnet::cuda::cuda_device_count(), 1);
  safnet::cuda::select_cuda_device(0);
  const std::string s = safnet::cuda::cuda_device_summary(0);
  EXPECT_EQ(s, "safnet CUDA simulator, 1 SM, sm_90, 16.0 GiB");
  for (int bad : {1, -1, 7}) {
    try {
      safnet::cuda::select_cuda_device(bad);
      FAIL() << "no throw for " << bad;
    } catch (const CudaError& e) {
      EXPECT_EQ(std::string(e.what()), "cuda:" + std::to_string(bad) +
                                           ": no such device (this machine has 1 CUDA device)");
    }
    EXPECT_THROW(safnet::cuda::cuda_device_summary(bad), CudaError);
  }
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
