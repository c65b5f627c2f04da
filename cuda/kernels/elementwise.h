// Element-wise ops on the GPU: ReLU forward/backward and addition (device pointers, one stream).
#pragma once
#include "cuda/hd.h"
#include <cstdint>

#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// A NaN passes through, as on the CPU.
void relu_forward(std::int64_t n, const float* x, float* y, cudaStream_t s);
// dx = dy where y > 0, else 0 (y is the forward output).
void relu_backward(std::int64_t n, const float* y, const float* dy, float* dx, cudaStream_t s);
void add_forward(std::int64_t n, const float* a, const float* b, float* y, cudaStream_t s);

}  // namespace safnet::cuda
