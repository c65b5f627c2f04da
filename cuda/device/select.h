// Which CUDA devices exist, choosing one, and a one-line description for logs and reports.
#pragma once
#include "cuda/hd.h"
#include <string>

namespace safnet::cuda::inline SAFNET_BUILD {

// 0 when there is no driver or no GPU; never throws. The simulator reports one device.
int cuda_device_count();
// Makes device `index` current for this thread; throws CudaError
// "cuda:N: no such device (this machine has K CUDA devices)" for a bad index.
void select_cuda_device(int index);
// e.g. "NVIDIA H100 80GB HBM3, 132 SMs, sm_90, 79.1 GiB"; the same error as select_cuda_device.
std::string cuda_device_summary(int index);

}  // namespace safnet::cuda
