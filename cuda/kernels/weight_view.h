// The weight view on the GPU as a separate pass: out = tau(dequant(raw)), and the SAF gradient
// epilogue grad *= tau'(raw). Conv2d and linear fuse the same math into their tile loads.
#pragma once
#include "cuda/hd.h"
#include <cstdint>

#include "cuda/kernels/weight_storage.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// out (count) = tau(dequant(raw (count))) for raw weights in `storage`.
void weight_view_load(const Saf& saf, StorageFormat storage, const void* raw, std::int64_t count, float* out,
                      cudaStream_t s);
// grad (count) *= tau'(raw (count)), raw in f32.
void weight_grad_epilogue(const Saf& saf, const float* raw, std::int64_t count, float* grad, cudaStream_t s);

// Launchers' check of a storage descriptor (frac_bits in 0..7 for fixed); throws naming `op`.
void check_weight_storage(StorageFormat storage, const char* op);

}  // namespace safnet::cuda
