// The device a kernel test runs on: the simulator (test_sim), or the GPU (test_gpu: the same test
// sources built against the real runtime where nvcc is present). The thread order switch exists
// only on the simulator; a GPU schedules as it likes.
#pragma once
#include <cstdint>
#include <string>

#if defined(SAFNET_CUDA_REAL)
#include <cuda_runtime.h>
#else
#include "cuda/sim/exec.h"
#endif

namespace safnet::test {

inline bool device_present() {
#if defined(SAFNET_CUDA_REAL)
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
#else
  return true;
#endif
}

inline std::string device_name() {
#if defined(SAFNET_CUDA_REAL)
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return "cuda (unknown)";
  return std::string("cuda: ") + p.name + ", sm_" + std::to_string(p.major) + std::to_string(p.minor);
#else
  return "simulator (cuda/sim, kernels compiled by the host compiler)";
#endif
}

inline std::uint64_t schedule_seed() {
#if defined(SAFNET_CUDA_REAL)
  return 0;
#else
  return safnet::sim::schedule_seed();
#endif
}

inline void set_schedule_seed(std::uint64_t seed) {
#if !defined(SAFNET_CUDA_REAL)
  safnet::sim::set_schedule_seed(seed);
#else
  (void)seed;
#endif
}

}  // namespace safnet::test

#define SAFNET_REQUIRE_DEVICE()                                                                          \
  do {                                                                                                   \
    if (!::safnet::test::device_present())                                                               \
      GTEST_SKIP() << "no CUDA GPU here: these kernel tests ran on the simulator instead (test_sim)";    \
  } while (0)
