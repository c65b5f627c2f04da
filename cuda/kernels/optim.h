// Optimizer updates on the GPU, element for element the formulas of host/optim.cpp (torch.optim).
#pragma once
#include "cuda/hd.h"
#include <cstdint>

#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// SGD with momentum, Nesterov and L2 weight decay: d = g + wd w; buf = mu buf + d;
// u = nesterov ? d + mu buf : (mu != 0 ? buf : d); w -= lr u. w, buf (n) updated in place.
void sgd_update(std::int64_t n, float* w, const float* g, float* buf, float lr, float momentum, bool nesterov,
                float weight_decay, cudaStream_t s);
// AdamW with decoupled weight decay; `step` is the 1-based step count after this update (the bias
// corrections use it). w, m, v (n) updated in place.
void adamw_update(std::int64_t n, float* w, const float* g, float* m, float* v, float lr, float beta1, float beta2,
                  float eps, float weight_decay, std::int64_t step, cudaStream_t s);

}  // namespace safnet::cuda
