// NVTX: the toolkit's header-only NVTX3 on the GPU build, the simulator's event list otherwise.
#include "cuda/device/nvtx.h"

#if defined(__CUDACC__) || defined(SAFNET_CUDA_REAL)
#include <nvtx3/nvToolsExt.h>
#else
#include "cuda/sim/nvtx.h"
#endif

namespace safnet::cuda::inline SAFNET_BUILD {

#if defined(__CUDACC__) || defined(SAFNET_CUDA_REAL)

NvtxRange::NvtxRange(const char* name) { nvtxRangePushA(name); }
NvtxRange::~NvtxRange() { nvtxRangePop(); }
void nvtx_mark(const char* name) { nvtxMarkA(name); }

#else

NvtxRange::NvtxRange(const char* name) { ::safnet::sim::nvtx_push(name); }
NvtxRange::~NvtxRange() { ::safnet::sim::nvtx_pop(); }
void nvtx_mark(const char* name) { ::safnet::sim::nvtx_mark(name); }

#endif

}  // namespace safnet::cuda
