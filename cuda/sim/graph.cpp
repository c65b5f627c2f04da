// Simulated stream capture and CUDA graphs: a capturing stream records its work, a graph replays it.
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "cuda/sim/counters.h"
#include "cuda/sim/runtime.h"

using WorkList = std::vector<safnet::sim::detail::CapturedWork>;

struct CUgraph_st {
  WorkList work;
};
// Shared so that a graph launched into a capturing stream stays alive in that capture.
struct CUgraphExec_st {
  std::shared_ptr<const WorkList> work;
};

namespace safnet::sim::detail {
namespace {

struct Capture {
  cudaStreamCaptureMode mode;
  std::thread::id owner;
  bool invalidated = false;
  WorkList work;
};

std::mutex g_mutex;
std::map<cudaStream_t, Capture> g_captures;
std::set<const CUgraph_st*> g_graphs;
std::set<const CUgraphExec_st*> g_execs;

// Whether an unsafe call from this thread conflicts with capture `c` (the rule of its mode).
bool forbids_unsafe_calls(const Capture& c) {
  return c.mode == cudaStreamCaptureModeGlobal ||
         (c.mode == cudaStreamCaptureModeThreadLocal && c.owner == std::this_thread::get_id());
}

cudaError_t run_work(const WorkList& work, cudaStream_t stream) {
  for (const CapturedWork& w : work)
    if (const cudaError_t e = w(stream); e != cudaSuccess) return e;
  return cudaSuccess;
}

}  // namespace

bool stream_capturing(cudaStream_t stream) {
  if (stream == nullptr) return false;  // the legacy stream cannot capture
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_captures.count(stream) != 0;
}

std::optional<cudaError_t> capture_record(cudaStream_t stream, CapturedWork work) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = stream == nullptr ? g_captures.end() : g_captures.find(stream);
    if (it != g_captures.end()) {
      if (it->second.invalidated) return cudaErrorStreamCaptureInvalidated;
      it->second.work.push_back(std::move(work));
      return cudaSuccess;
    }
  }
  return defer(stream, std::move(work));
}

void capture_invalidate(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_captures.find(stream);
  if (it != g_captures.end()) it->second.invalidated = true;
}

cudaError_t capture_check_unsafe_call() {
  std::lock_guard<std::mutex> lock(g_mutex);
  bool conflict = false;
  for (auto& [stream, c] : g_captures) {
    if (!forbids_unsafe_calls(c)) continue;
    c.invalidated = true;
    conflict = true;
  }
  return conflict ? set_last_error(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}

cudaError_t capture_check_stream_sync(cudaStream_t stream) {
  if (stream == nullptr) return capture_check_unsafe_call();
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_captures.find(stream);
  if (it == g_captures.end()) return cudaSuccess;
  it->second.invalidated = true;
  return set_last_error(cudaErrorStreamCaptureUnsupported);
}

void capture_forget(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_captures.erase(stream);
}

}  // namespace safnet::sim::detail

namespace safnet::sim::api {

using safnet::sim::detail::g_captures;
using safnet::sim::detail::g_execs;
using safnet::sim::detail::g_graphs;
using safnet::sim::detail::g_mutex;
using safnet::sim::detail::set_last_error;

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (stream == nullptr) return set_last_error(cudaErrorStreamCaptureUnsupported);
  if (!safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return set_last_error(cudaErrorInvalidValue);
  // Work queued before the capture is not part of it.
  if (const cudaError_t e = safnet::sim::detail::drain_stream(stream); e != cudaSuccess) return e;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_captures.count(stream) != 0) return set_last_error(cudaErrorIllegalState);
  g_captures.emplace(stream, safnet::sim::detail::Capture{mode, std::this_thread::get_id(), false, {}});
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (graph == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (stream == nullptr || !safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_captures.find(stream);
  if (it == g_captures.end()) return set_last_error(cudaErrorIllegalState);
  if (it->second.mode != cudaStreamCaptureModeRelaxed &&
      it->second.owner != std::this_thread::get_id())
    return set_last_error(cudaErrorStreamCaptureWrongThread);
  safnet::sim::detail::Capture c = std::move(it->second);
  g_captures.erase(it);
  *graph = nullptr;
  if (c.invalidated) return set_last_error(cudaErrorStreamCaptureInvalidated);
  *graph = new CUgraph_st{std::move(c.work)};
  g_graphs.insert(*graph);
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (status == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (!safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_captures.find(stream);
  *status = it == g_captures.end() ? cudaStreamCaptureStatusNone
            : it->second.invalidated ? cudaStreamCaptureStatusInvalidated
                                     : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

// The executable copies the graph's work, so destroying the graph afterwards leaves it intact.
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (exec == nullptr || graph == nullptr) return set_last_error(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_graphs.count(graph) == 0) return set_last_error(cudaErrorInvalidResourceHandle);
  *exec = new CUgraphExec_st{std::make_shared<const WorkList>(graph->work)};
  g_execs.insert(*exec);
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (!safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  std::shared_ptr<const WorkList> work;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_execs.count(exec) == 0) return set_last_error(cudaErrorInvalidResourceHandle);
    work = exec->work;
  }
  auto run = [work](cudaStream_t s) { return safnet::sim::detail::run_work(*work, s); };
  if (safnet::sim::detail::stream_capturing(stream))
    if (auto r = safnet::sim::detail::capture_record(stream, run)) return *r == cudaSuccess ? cudaSuccess : set_last_error(*r);
  safnet::sim::detail::count_graph_launch();
  // On an interleaved stream each node is queued on its own, so other streams' work runs between them.
  if (safnet::sim::detail::stream_deferred(stream)) {
    for (std::size_t i = 0; i < work->size(); ++i)
      if (auto r = safnet::sim::detail::defer(stream, [work, i](cudaStream_t s) { return (*work)[i](s); }))
        if (*r != cudaSuccess) return set_last_error(*r);
    return cudaSuccess;
  }
  const cudaError_t e = safnet::sim::detail::run_work(*work, stream);
  return e == cudaSuccess ? e : set_last_error(e);
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (graph == nullptr || g_graphs.erase(graph) == 0)
    return set_last_error(cudaErrorInvalidResourceHandle);
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (exec == nullptr || g_execs.erase(exec) == 0)
    return set_last_error(cudaErrorInvalidResourceHandle);
  delete exec;
  return cudaSuccess;
}

}  // namespace safnet::sim::api
