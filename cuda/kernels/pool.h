// Pooling on the GPU: global average pooling and max pooling with saved arg-max indices.
#pragma once
#include <cstdint>

#include "cuda/geometry.h"
#include "cuda/hd.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// y (N, C) = mean over HW of x (N, C, HW).
void global_avgpool_forward(int n, int c, int hw, const float* x, float* y, cudaStream_t s);
void global_avgpool_backward(int n, int c, int hw, const float* dy, float* dx, cudaStream_t s);

using ::safnet::PoolGeom;
// y (N, C, OH, OW); argmax (N, C, OH, OW) holds the flat input index h*W+w of each max.
void maxpool_forward(const PoolGeom& g, const float* x, float* y, std::int32_t* argmax, cudaStream_t s);
// dx (N, C, H, W): each input pixel sums, in increasing output order, the dy whose arg-max it is
// (the CPU's scatter order, so the sums match bit for bit). Indices that no window covering the
// pixel can hold are ignored rather than reported: kernels cannot throw.
void maxpool_backward(const PoolGeom& g, const float* dy, const std::int32_t* argmax, float* dx, cudaStream_t s);

}  // namespace safnet::cuda
