// The WMMA API and the bf16 type for kernels: CUDA's headers under nvcc, the simulator's
// implementation (cuda/sim/wmma.h) under the host compiler.
#pragma once
#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <mma.h>
#elif !defined(SAFNET_CUDA_REAL)
#include "cuda/sim/wmma.h"
#endif
