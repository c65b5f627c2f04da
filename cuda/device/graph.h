// A captured CUDA graph: record a stream's work once, replay it with one launch.
#pragma once
#include "cuda/hd.h"

#include "cuda/cuda_check.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// Capture uses cudaStreamCaptureModeThreadLocal: this thread may not call cudaMalloc, cudaMemcpy or
// synchronise between begin_capture and end_capture (the capture is invalidated and end_capture
// throws), while other threads stay free to. Replays read and write the same device addresses as
// the captured work, with whatever contents they hold at replay time.
class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph();  // ends an unfinished capture, discarding it
  CudaGraph(CudaGraph&& other) noexcept;
  CudaGraph& operator=(CudaGraph&& other) noexcept;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Starts recording the work queued on `stream` (not the legacy stream); drops a previous graph.
  void begin_capture(cudaStream_t stream);
  // Stops recording and instantiates the graph. Throws CudaError when the capture was invalidated
  // (and clears the pending last error); the stream is out of capture mode either way.
  void end_capture();
  // Launches the instantiated graph on `stream`; throws std::logic_error when none is ready.
  void replay(cudaStream_t stream);
  bool ready() const { return exec_ != nullptr; }

 private:
  void reset() noexcept;

  cudaStream_t capturing_ = nullptr;  // the stream being captured, if any
  bool is_capturing_ = false;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace safnet::cuda
