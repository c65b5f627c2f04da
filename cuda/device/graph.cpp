// CUDA graph capture, instantiation and replay.
#include "cuda/device/graph.h"

#include <stdexcept>
#include <utility>

namespace safnet::cuda::inline SAFNET_BUILD {

CudaGraph::~CudaGraph() { reset(); }

CudaGraph::CudaGraph(CudaGraph&& other) noexcept
    : capturing_(std::exchange(other.capturing_, nullptr)),
      is_capturing_(std::exchange(other.is_capturing_, false)),
      exec_(std::exchange(other.exec_, nullptr)) {}

CudaGraph& CudaGraph::operator=(CudaGraph&& other) noexcept {
  if (this != &other) {
    reset();
    capturing_ = std::exchange(other.capturing_, nullptr);
    is_capturing_ = std::exchange(other.is_capturing_, false);
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

void CudaGraph::reset() noexcept {
  if (is_capturing_) {
    cudaGraph_t graph = nullptr;
    if (cudaStreamEndCapture(capturing_, &graph) != cudaSuccess) (void)cudaGetLastError();
    if (graph != nullptr && cudaGraphDestroy(graph) != cudaSuccess) (void)cudaGetLastError();
    is_capturing_ = false;
    capturing_ = nullptr;
  }
  if (exec_ != nullptr && cudaGraphExecDestroy(exec_) != cudaSuccess) (void)cudaGetLastError();
  exec_ = nullptr;
}

void CudaGraph::begin_capture(cudaStream_t stream) {
  if (is_capturing_)
    throw std::logic_error("cuda/device/graph.cpp: begin_capture while a capture is under way");
  reset();
  SAFNET_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  capturing_ = stream;
  is_capturing_ = true;
}

void CudaGraph::end_capture() {
  if (!is_capturing_)
    throw std::logic_error("cuda/device/graph.cpp: end_capture without begin_capture");
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(capturing_, &graph);
  is_capturing_ = false;
  capturing_ = nullptr;
  // The exception reports the failure; left pending, it would fail the next launch check too.
  if (e != cudaSuccess) (void)cudaGetLastError();
  SAFNET_CUDA_CHECK(e);
  // The executable graph does not depend on the graph it came from.
  const cudaError_t inst = cudaGraphInstantiate(&exec_, graph, 0);
  if (inst != cudaSuccess) exec_ = nullptr;
  SAFNET_CUDA_CHECK(cudaGraphDestroy(graph));
  SAFNET_CUDA_CHECK(inst);
}

void CudaGraph::replay(cudaStream_t stream) {
  if (exec_ == nullptr)
    throw std::logic_error("cuda/device/graph.cpp: replay of a graph not captured");
  SAFNET_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

}  // namespace safnet::cuda
