// A stream-ordered caching allocator for device memory: released blocks stay cached for reuse.
#pragma once
#include "cuda/hd.h"
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/cuda_check.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// Every block belongs to one stream, so a block released while kernels queued on that stream still
// use it can be handed to the next allocation at once: the stream runs the new user's work after
// the old. Work on other streams must not touch a block after it is released.
//
// Sizes round up to a size class (512 B steps up to 1 MiB, then 8 classes per doubling, so at most
// 1/8 is wasted) and a cached block is reused only by a request of the same class. Blocks are
// 256-byte aligned. allocate(0) returns nullptr, and release(nullptr) does nothing.
//
// Inside a CUDA graph capture only cache hits are legal (cudaMalloc is forbidden there): run the
// captured work once uncaptured first so its blocks are cached.
class CachingAllocator {
 public:
  explicit CachingAllocator(cudaStream_t stream);  // the stream must outlive the allocator
  ~CachingAllocator();  // synchronises the stream, then frees every block, cached or in use
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Throws CudaError "out of device memory: ..." when cudaMalloc fails even after the cache was
  // emptied, and CudaError for any other runtime failure.
  void* allocate(std::size_t bytes);
  // Throws std::invalid_argument for a pointer it did not hand out or already took back.
  void release(void* p);

  std::size_t in_use_bytes() const;  // rounded sizes of the blocks handed out
  std::size_t peak_bytes() const;    // high-water mark of in_use_bytes()
  std::size_t cached_bytes() const;  // rounded sizes of the blocks waiting in the cache
  // Synchronises the stream, then returns every cached block to cudaFree.
  void empty_cache();
  cudaStream_t stream() const { return stream_; }

  // The size class of a request of `bytes` (> 0).
  static std::size_t round_size(std::size_t bytes);

 private:
  void empty_cache_locked();
  void* cuda_malloc_locked(std::size_t size, std::size_t requested);

  cudaStream_t stream_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, std::size_t> live_;     // block -> rounded size
  std::map<std::size_t, std::vector<void*>> free_;  // rounded size -> cached blocks
  std::size_t in_use_ = 0;
  std::size_t peak_ = 0;
  std::size_t cached_ = 0;
};

}  // namespace safnet::cuda
