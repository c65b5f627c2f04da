// Batch normalisation on the GPU: training forward (batch statistics), evaluation forward, backward.
#pragma once
#include "cuda/geometry.h"
#include "cuda/hd.h"
#include "cuda/kernels/launch_geometry.h"
#include "cuda/kernels/workspace.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

using ::safnet::BnGeom;
// Training and backward sum each channel over batchnorm_plan(g).parts blocks, then combine the
// partitions in a fixed order: the same bits on any schedule. `ws` holds
// batchnorm_plan(g).workspace_bytes(); the overloads without it take a StreamWorkspace (not inside
// a CUDA-graph capture).

// Training: normalise with batch statistics; saves mean (C) and invstd (C) = 1/sqrt(var + eps)
// (biased var), and updates running_mean/var (C) (either may be null) with momentum m:
// running = (1 - m) running + m batch, the running var using the unbiased batch var.
void batchnorm_forward_train(const BnGeom& g, const float* x, const float* gamma, const float* beta, float eps,
                             float momentum, float* y, float* mean, float* invstd, float* running_mean,
                             float* running_var, const Workspace& ws, cudaStream_t s);
void batchnorm_forward_train(const BnGeom& g, const float* x, const float* gamma, const float* beta, float eps,
                             float momentum, float* y, float* mean, float* invstd, float* running_mean,
                             float* running_var, cudaStream_t s);
// Evaluation: normalise with running statistics (no workspace).
void batchnorm_forward_eval(const BnGeom& g, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float eps, float* y,
                            cudaStream_t s);
// dx (N, C, HW), dgamma (C), dbeta (C) for the training-mode forward.
void batchnorm_backward(const BnGeom& g, const float* x, const float* dy, const float* gamma, const float* mean,
                        const float* invstd, float* dx, float* dgamma, float* dbeta, const Workspace& ws,
                        cudaStream_t s);
void batchnorm_backward(const BnGeom& g, const float* x, const float* dy, const float* gamma, const float* mean,
                        const float* invstd, float* dx, float* dgamma, float* dbeta, cudaStream_t s);

// The partitions of the training forward and the backward, and the grid of the evaluation.
BnPlan batchnorm_plan(const BnGeom& g);
BnEvalGrid batchnorm_eval_grid(const BnGeom& g);

}  // namespace safnet::cuda
