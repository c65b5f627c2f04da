// Shared by the kernel files: argument errors thrown by launchers, grid sizing, and the
// deterministic block reduction used wherever a sum must reproduce bit for bit.
#pragma once
#include "cuda/hd.h"
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// A launcher rejected its arguments (shapes, counts, dtypes). Thrown before anything is launched.
class KernelArgError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

template <typename... Args>
[[noreturn]] void arg_fail(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw KernelArgError(os.str());
}

// Blocks of `threads` covering n items, capped so a grid-stride loop covers the rest.
inline unsigned grid_for(std::int64_t n, int threads, std::int64_t max_blocks = 65535) {
  std::int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return static_cast<unsigned>(b < max_blocks ? b : max_blocks);
}

// Device code: seen by nvcc and the simulator, not by host files of the GPU build.
#if defined(__CUDACC__) || !defined(SAFNET_CUDA_REAL)
// Sums `v` over the block in a fixed tree order that depends only on blockDim.x, so the result
// does not depend on the schedule. `buf` holds blockDim.x values; every thread must call it.
// Every thread receives the sum.
template <typename T>
__device__ T block_sum(T v, T* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (unsigned len = blockDim.x; len > 1;) {
    const unsigned half = (len + 1) / 2;
    if (threadIdx.x + half < len) buf[threadIdx.x] += buf[threadIdx.x + half];
    __syncthreads();
    len = half;
  }
  const T out = buf[0];
  __syncthreads();  // buf may be reused right after
  return out;
}
#endif

}  // namespace safnet::cuda
