// The caching allocator: size classes, per-class free lists, one retry after emptying the cache.
#include "cuda/device/allocator.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <sstream>
#include <stdexcept>

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr std::size_t kSmallStep = 512;
constexpr std::size_t kSmallLimit = std::size_t{1} << 20;
constexpr std::size_t kAlignment = 256;
// Larger requests cannot be rounded without overflow; no device has this much memory anyway.
constexpr std::size_t kMaxRequest = std::size_t{1} << 60;

[[noreturn]] void out_of_memory(std::size_t requested, std::size_t in_use, std::size_t peak) {
  std::ostringstream os;
  os << "cuda/device/allocator.cpp: out of device memory: requested " << requested << " bytes, "
     << in_use << " in use, peak " << peak;
  throw CudaError(os.str());
}

}  // namespace

CachingAllocator::CachingAllocator(cudaStream_t stream) : stream_(stream) {}

CachingAllocator::~CachingAllocator() {
  // Destructors must not throw: failures here leave memory to the driver's teardown.
  if (cudaStreamSynchronize(stream_) != cudaSuccess) (void)cudaGetLastError();
  for (auto& [p, size] : live_)
    if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
  for (auto& [size, blocks] : free_)
    for (void* p : blocks)
      if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
}

std::size_t CachingAllocator::round_size(std::size_t bytes) {
  if (bytes <= kSmallLimit)
    return std::max<std::size_t>(1, (bytes + kSmallStep - 1) / kSmallStep) * kSmallStep;
  const std::size_t step = std::bit_floor(bytes) / 8;
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  if (bytes > kMaxRequest) out_of_memory(bytes, in_use_, peak_);
  const std::size_t size = round_size(bytes);
  void* p = nullptr;
  auto it = free_.find(size);
  if (it != free_.end()) {
    p = it->second.back();
    it->second.pop_back();
    if (it->second.empty()) free_.erase(it);
    cached_ -= size;
  } else {
    p = cuda_malloc_locked(size, bytes);
  }
  live_.emplace(p, size);
  in_use_ += size;
  peak_ = std::max(peak_, in_use_);
  return p;
}

void* CachingAllocator::cuda_malloc_locked(std::size_t size, std::size_t requested) {
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // the failure is handled here, not left for the next check
    empty_cache_locked();
    e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      out_of_memory(requested, in_use_, peak_);
    }
  }
  SAFNET_CUDA_CHECK(e);
  if (reinterpret_cast<std::uintptr_t>(p) % kAlignment != 0) {
    (void)cudaFree(p);
    throw CudaError("cuda/device/allocator.cpp: cudaMalloc returned a block not 256-byte aligned");
  }
  return p;
}

void CachingAllocator::release(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(p);
  if (it == live_.end()) {
    std::ostringstream os;
    os << "cuda/device/allocator.cpp: release of " << p
       << ", which this allocator did not allocate or already released";
    throw std::invalid_argument(os.str());
  }
  const std::size_t size = it->second;
  live_.erase(it);
  in_use_ -= size;
  free_[size].push_back(p);
  cached_ += size;
}

std::size_t CachingAllocator::in_use_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

std::size_t CachingAllocator::peak_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peak_;
}

std::size_t CachingAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

void CachingAllocator::empty_cache_locked() {
  // Cached blocks may still be read or written by work queued before their release.
  SAFNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
  while (!free_.empty()) {
    auto& blocks = free_.begin()->second;
    while (!blocks.empty()) {
      SAFNET_CUDA_CHECK(cudaFree(blocks.back()));
      cached_ -= free_.begin()->first;
      blocks.pop_back();
    }
    free_.erase(free_.begin());
  }
}

}  // namespace safnet::cuda
