// Page-locked host buffers (cudaMallocHost), for host staging that copies to the device asynchronously.
#pragma once
#include "cuda/hd.h"
#include <cstddef>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "cuda/cuda_check.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// Elements are left uninitialised, as by cudaMallocHost.
template <typename T>
class PinnedBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "pinned buffers hold trivially copyable elements");

 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t n) { resize(n); }
  ~PinnedBuffer() {
    if (data_ != nullptr && cudaFreeHost(data_) != cudaSuccess) (void)cudaGetLastError();
  }
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      PinnedBuffer old(std::move(*this));
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

  // Keeps the first min(size(), n) elements; n == 0 frees the buffer.
  void resize(std::size_t n) {
    if (n == size_) return;
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T))
      throw std::length_error("cuda/device/pinned.h: PinnedBuffer of " + std::to_string(n) +
                              " elements overflows size_t");
    T* fresh = nullptr;
    if (n > 0) {
      void* p = nullptr;
      SAFNET_CUDA_CHECK(cudaMallocHost(&p, n * sizeof(T)));
      fresh = static_cast<T*>(p);
      if (size_ > 0) std::memcpy(fresh, data_, (n < size_ ? n : size_) * sizeof(T));
    }
    if (data_ != nullptr) {
      const cudaError_t e = cudaFreeHost(data_);
      if (e != cudaSuccess && fresh != nullptr) (void)cudaFreeHost(fresh);
      SAFNET_CUDA_CHECK(e);
    }
    data_ = fresh;
    size_ = n;
  }

 private:
  T* data_ = nullptr;  // (size_)
  std::size_t size_ = 0;
};

}  // namespace safnet::cuda
