// Device scratch for the partial sums of the split-K weight gradients and of batch norm. The caller
// owns it (the CUDA backend keeps one, grown before any capture), so no launcher allocates inside
// a CUDA-graph capture; each op says how many bytes it needs (its *_plan(...).workspace_bytes()).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/kernels/common.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

struct Workspace {
  void* ptr = nullptr;  // device memory, 16-byte aligned
  std::size_t bytes = 0;
};

// Launchers reject a workspace smaller than `need` bytes or not 16-byte aligned (`op` names them).
inline void check_workspace(const Workspace& ws, std::size_t need, const char* op) {
  if (need == 0) return;
  if (ws.ptr == nullptr || ws.bytes < need)
    arg_fail(op, ": a workspace of ", ws.bytes, " bytes, ", need, " needed");
  if (reinterpret_cast<std::uintptr_t>(ws.ptr) % 16 != 0) arg_fail(op, ": the workspace is not 16-byte aligned");
}

// A workspace of its own for a caller that has none (tests, benchmarks): stream-ordered
// cudaMallocAsync, freed on the stream after the work queued meanwhile. Not for code that may run
// inside a CUDA-graph capture.
class StreamWorkspace {
 public:
  StreamWorkspace(std::size_t bytes, cudaStream_t s) : s_(s) {
    if (bytes > 0) SAFNET_CUDA_CHECK(cudaMallocAsync(&ws_.ptr, bytes, s));
    ws_.bytes = bytes;
  }
  ~StreamWorkspace() {
    if (ws_.ptr) (void)cudaFreeAsync(ws_.ptr, s_);
  }
  StreamWorkspace(const StreamWorkspace&) = delete;
  StreamWorkspace& operator=(const StreamWorkspace&) = delete;
  const Workspace& get() const { return ws_; }

 private:
  Workspace ws_;
  cudaStream_t s_;
};

}  // namespace safnet::cuda
