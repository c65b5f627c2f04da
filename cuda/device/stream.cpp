// RAII CUDA streams and events.
#include "cuda/device/stream.h"

#include <stdexcept>
#include <utility>

namespace safnet::cuda::inline SAFNET_BUILD {

Stream::Stream() { SAFNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }

Stream::~Stream() {
  if (stream_ != nullptr && cudaStreamDestroy(stream_) != cudaSuccess) (void)cudaGetLastError();
}

Stream::Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    Stream old(std::move(*this));
    stream_ = std::exchange(other.stream_, nullptr);
  }
  return *this;
}

cudaStream_t Stream::get() const {
  if (stream_ == nullptr) throw std::logic_error("cuda/device/stream.cpp: Stream used after move");
  return stream_;
}

void Stream::synchronize() const { SAFNET_CUDA_CHECK(cudaStreamSynchronize(get())); }

Event::Event(unsigned int flags) { SAFNET_CUDA_CHECK(cudaEventCreateWithFlags(&event_, flags)); }

Event::~Event() {
  if (event_ != nullptr && cudaEventDestroy(event_) != cudaSuccess) (void)cudaGetLastError();
}

Event::Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    Event old(std::move(*this));
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

cudaEvent_t Event::get() const {
  if (event_ == nullptr) throw std::logic_error("cuda/device/stream.cpp: Event used after move");
  return event_;
}

void Event::record(cudaStream_t stream) { SAFNET_CUDA_CHECK(cudaEventRecord(get(), stream)); }

void Event::synchronize() const { SAFNET_CUDA_CHECK(cudaEventSynchronize(get())); }

float Event::elapsed_ms(const Event& a, const Event& b) {
  float ms = 0.0f;
  SAFNET_CUDA_CHECK(cudaEventElapsedTime(&ms, a.get(), b.get()));
  return ms;
}

}  // namespace safnet::cuda
