// NVTX ranges and marks, so Nsight timelines name every layer and phase.
#pragma once
#include "cuda/hd.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// A range from construction to destruction; ranges opened on one thread nest. On the simulator
// the range goes to safnet::sim::nvtx_events() as "push NAME" ... "pop".
class NvtxRange {
 public:
  explicit NvtxRange(const char* name);
  ~NvtxRange();
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

void nvtx_mark(const char* name);

}  // namespace safnet::cuda
