// The one CUDA error check: a failing runtime call throws CudaError naming the call, file and line.
// Under nvcc (or with SAFNET_CUDA_REAL for host files of the GPU backend) it checks the real
// runtime; otherwise the simulated one in cuda/sim.
//
// SAFNET_CUDA_SYNC=1 in the environment (read once): every SAFNET_LAUNCH under nvcc also
// synchronises its stream and checks, so an asynchronous fault (illegal address, trap, launch
// timeout) is reported at the kernel that caused it, naming that kernel, instead of at some later
// call; the CUDA backend then records no CUDA graph (work runs launch by launch). Slow: for finding
// causes, not for timing.
#pragma once
#include <cstdlib>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__) || defined(SAFNET_CUDA_REAL)
#include <cuda_runtime.h>
#else
#include "cuda/sim/runtime.h"
#endif

namespace safnet {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void cuda_check_failed(cudaError_t error, const char* call, const char* file,
                                           int line) {
  throw CudaError(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                  cudaGetErrorName(error) + " (" + cudaGetErrorString(error) + ")");
}

// Whether SAFNET_CUDA_SYNC is set to something other than "" or "0".
inline bool cuda_sync_each_launch() {
  static const bool on = [] {
    const char* v = std::getenv("SAFNET_CUDA_SYNC");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
  }();
  return on;
}

#if defined(__CUDACC__) || defined(SAFNET_CUDA_REAL)
// After a launch under SAFNET_CUDA_SYNC=1: waits for the stream (unless it is being captured,
// where waiting is not allowed) and throws naming the kernel if it failed.
inline void cuda_sync_after_launch(cudaStream_t stream, const char* kernel, const char* file, int line) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) == cudaSuccess && capture != cudaStreamCaptureStatusNone) return;
  const cudaError_t error = cudaStreamSynchronize(stream);
  if (error != cudaSuccess)
    throw CudaError(std::string(file) + ":" + std::to_string(line) + ": kernel " + kernel +
                    " failed (SAFNET_CUDA_SYNC=1 waited right after its launch): " + cudaGetErrorName(error) +
                    " (" + cudaGetErrorString(error) + ")");
}
#endif

}  // namespace safnet

#define SAFNET_CUDA_CHECK(call)                                                   \
  do {                                                                            \
    const cudaError_t safnet_cuda_err_ = (call);                                  \
    if (safnet_cuda_err_ != cudaSuccess)                                          \
      ::safnet::cuda_check_failed(safnet_cuda_err_, #call, __FILE__, __LINE__);   \
  } while (0)
