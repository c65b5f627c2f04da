// Kernel launches and dynamic shared memory, written once for nvcc and for the CPU simulator.
//
//   SAFNET_LAUNCH(kernel, grid, block, smem_bytes, stream, args...)
// is kernel<<<grid, block, smem_bytes, stream>>>(args...) under nvcc and a simulated launch under
// the host compiler; both then check cudaGetLastError() and throw safnet::CudaError on failure.
// Under nvcc with SAFNET_CUDA_SYNC=1 (cuda_check.h) each launch also waits for its stream and
// checks, so a fault names the kernel that caused it.
// A template kernel with several arguments goes in parentheses (both compilers accept it), since a
// comma would split the macro argument: `SAFNET_LAUNCH((conv_kernel<float, 64>), grid, ...)`.
//
//   SAFNET_DYNAMIC_SHARED(T, name);
// declares `T* name` pointing at the block's dynamic shared memory (the launch's smem_bytes). It
// replaces `extern __shared__ T name[];`, which the host compiler cannot express and which clashes
// between template instantiations of different T under nvcc.
#pragma once
#include "cuda/cuda_check.h"

#if defined(__CUDACC__)
#include <cuda_runtime.h>

#define SAFNET_LAUNCH(kernel, grid, block, smem_bytes, stream, ...)     \
  do {                                                                  \
    kernel<<<grid, block, smem_bytes, stream>>>(__VA_ARGS__);           \
    SAFNET_CUDA_CHECK(cudaGetLastError());                              \
    if (::safnet::cuda_sync_each_launch())                              \
      ::safnet::cuda_sync_after_launch(stream, #kernel, __FILE__, __LINE__); \
  } while (0)

#define SAFNET_DYNAMIC_SHARED(T, name)                                  \
  extern __shared__ __align__(16) unsigned char safnet_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(safnet_dynamic_smem_)

#elif defined(SAFNET_CUDA_REAL)
// Host files of the GPU build see the launchers' declarations only; kernels launch from .cu files.
#include <cuda_runtime.h>

#else
#include "cuda/sim/sim.h"

#define SAFNET_LAUNCH(kernel, grid, block, smem_bytes, stream, ...)                          \
  do {                                                                                       \
    ::safnet::sim::launch(#kernel, kernel, grid, block, smem_bytes, stream __VA_OPT__(, )    \
                              __VA_ARGS__);                                                  \
    SAFNET_CUDA_CHECK(cudaGetLastError());                                                   \
  } while (0)

#define SAFNET_DYNAMIC_SHARED(T, name) \
  T* name = reinterpret_cast<T*>(::safnet::sim::detail::t_block.dynamic_smem)

#endif
