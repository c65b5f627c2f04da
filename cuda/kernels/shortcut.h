// He et al. option A shortcut on the GPU: strided subsampling plus zero channels on both sides.
#pragma once
#include "cuda/hd.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// y (N, K, OH, OW) from x (N, C, H, W), OH = ceil(H / stride), (K - C) / 2 zero channels each side.
void shortcut_a_forward(int n, int c, int h, int w, int stride, int k, const float* x, float* y, cudaStream_t s);
// dx (N, C, H, W) from dy (N, K, OH, OW).
void shortcut_a_backward(int n, int c, int h, int w, int stride, int k, const float* dy, float* dx, cudaStream_t s);

}  // namespace safnet::cuda
