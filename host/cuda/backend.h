// The CUDA backend: graph nodes onto the kernels of cuda/kernels, device memory and one stream.
// The same source builds against the real runtime (SAFNET_CUDA_REAL, for GPUs) and against the
// simulator (cuda/sim, for --device sim), each in its own inline namespace (cuda/hd.h).
#pragma once
#include <memory>

#include "cuda/hd.h"
#include "host/backend.h"

namespace safnet::cuda_backend::inline SAFNET_BUILD {

// Number of devices this build can use (0 without a driver or GPU; 1 for the simulator).
int device_count();
// A backend on device `index`; errors name the device and say how many there are.
std::unique_ptr<Backend> make_backend(int index);

}  // namespace safnet::cuda_backend::inline SAFNET_BUILD
