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

// How far the device's math may be from the CPU reference's, for the tolerances of the kernel
// tests. On the simulator the kernels are compiled by the host compiler and call the same glibc
// functions as the reference, so the bounds are 0 and those comparisons stay exact. On a GPU:
// - tanhf and atanf: CUDA's are within 2 ulp of the correctly rounded result (CUDA C++ Programming
//   Guide, "Mathematical Functions", single precision, full range); glibc's (x86_64) within 2
//   (tanhf) and 1 (atanf) ulp (glibc manual, "Known Maximum Errors in Math Functions"); two results
//   are then at most the sum apart.
// - nvcc contracts a * b + c into one fused multiply-add by default (-fmad=true); the host build
//   rounds the product first. Either way each result is within 1/2 ulp of its exact value.
#if defined(SAFNET_CUDA_REAL)
inline constexpr int kTanhfUlps = 2 + 2;
inline constexpr int kAtanfUlps = 2 + 1;
inline constexpr bool kMayContract = true;
#else
inline constexpr int kTanhfUlps = 0;
inline constexpr int kAtanfUlps = 0;
inline constexpr bool kMayContract = false;
#endif

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
