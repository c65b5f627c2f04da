// Batch normalisation on the GPU: training forward (batch statistics), evaluation forward, backward.
#pragma once
#include "cuda/geometry.h"
#include "cuda/hd.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

using ::safnet::BnGeom;
// Training: normalise with batch statistics; saves mean (C) and invstd (C) = 1/sqrt(var + eps)
// (biased var), and updates running_mean/var (C) (either may be null) with momentum m:
// running = (1 - m) running + m batch, the running var using the unbiased batch var.
void batchnorm_forward_train(const BnGeom& g, const float* x, const float* gamma, const float* beta, float eps,
                             float momentum, float* y, float* mean, float* invstd, float* running_mean,
                             float* running_var, cudaStream_t s);
// Evaluation: normalise with running statistics.
void batchnorm_forward_eval(const BnGeom& g, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float eps, float* y,
                            cudaStream_t s);
// dx (N, C, HW), dgamma (C), dbeta (C) for the training-mode forward.
void batchnorm_backward(const BnGeom& g, const float* x, const float* dy, const float* gamma, const float* mean,
                        const float* invstd, float* dx, float* dgamma, float* dbeta, cudaStream_t s);

}  // namespace safnet::cuda
