// CUDA device enumeration and selection.
#include "cuda/device/select.h"

#include <cstdio>

#include "cuda/cuda_check.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

void check_index(int index) {
  const int count = cuda_device_count();
  if (index >= 0 && index < count) return;
  throw CudaError("cuda:" + std::to_string(index) + ": no such device (this machine has " +
                  std::to_string(count) + " CUDA device" + (count == 1 ? "" : "s") + ")");
}

}  // namespace

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or no device is an answer here, not a pending error
    return 0;
  }
  return count;
}

void select_cuda_device(int index) {
  check_index(index);
  SAFNET_CUDA_CHECK(cudaSetDevice(index));
}

std::string cuda_device_summary(int index) {
  check_index(index);
  cudaDeviceProp prop{};
  SAFNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  char gib[32];
  std::snprintf(gib, sizeof gib, "%.1f GiB", static_cast<double>(prop.totalGlobalMem) / (1u << 30));
  std::string name(prop.name);
#if !defined(__CUDACC__) && !defined(SAFNET_CUDA_REAL)
  if (name.find("simulator") == std::string::npos) name += " (simulator)";
#endif
  return name + ", " + std::to_string(prop.multiProcessorCount) + " SM" +
         (prop.multiProcessorCount == 1 ? "" : "s") + ", sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " + gib;
}

}  // namespace safnet::cuda
