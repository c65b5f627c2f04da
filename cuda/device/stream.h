// RAII CUDA streams and events; every runtime call is checked.
#pragma once
#include "cuda/hd.h"

#include "cuda/cuda_check.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// A non-blocking stream: it does not synchronise with the legacy default stream. A moved-from
// Stream holds none, and get() on it throws std::logic_error rather than hand out the legacy stream.
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const;
  void synchronize() const;

 private:
  cudaStream_t stream_ = nullptr;
};

// An event with timing enabled unless `flags` says otherwise (cudaEventDisableTiming).
class Event {
 public:
  explicit Event(unsigned int flags = cudaEventDefault);
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const;
  void record(cudaStream_t stream);
  void synchronize() const;
  // Milliseconds from a's completion to b's; both must have been recorded and completed.
  static float elapsed_ms(const Event& a, const Event& b);

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace safnet::cuda
