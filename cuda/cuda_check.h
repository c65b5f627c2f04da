// The one CUDA error check: a failing runtime call throws CudaError naming the call, file and line.
// Under nvcc (or with SAFNET_CUDA_REAL for host files of the GPU backend) it checks the real
// runtime; otherwise the simulated one in cuda/sim.
#pragma once
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

}  // namespace safnet

#define SAFNET_CUDA_CHECK(call)                                                   \
  do {                                                                            \
    const cudaError_t safnet_cuda_err_ = (call);                                  \
    if (safnet_cuda_err_ != cudaSuccess)                                          \
      ::safnet::cuda_check_failed(safnet_cuda_err_, #call, __FILE__, __LINE__);   \
  } while (0)
