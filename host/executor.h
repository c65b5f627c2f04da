// Executor: runs a Graph on one backend with activation memory planned by liveness.
// Several executors may share one Graph; each owns its activations and its bindings.
// On a backend that fuses, each conv2d -> batchnorm_eval [-> add] [-> relu] chain runs as one
// step (host/fusion.h): its inner values are never written, and node positions inside a chain
// are not boundaries (run_range and live_across take boundaries only).
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "host/backend.h"
#include "host/graph.h"
#include "host/params.h"

namespace safnet {

class Executor {
 public:
  // `outputs` stay readable after run() (loss, logits, gradients); every other activation's
  // buffer is reused once its last reader has run.
  // `fuse`: run fusable chains as one step where the backend can (off: node by node, as written).
  Executor(const Graph& graph, std::vector<ValueId> outputs, Backend& backend = cpu_backend(), bool fuse = true);

  // Binds every param/state value of the graph to the tensor of the same name (shared storage),
  // which must live on the executor's device.
  // A param may be bound in a storage dtype (f16, bf16, fixed): conv2d and linear read it
  // through their weight view.
  void bind_params(ParamStore& store);
  void bind(ValueId v, Tensor t);
  void set_input(ValueId v, Tensor t) { bind(v, std::move(t)); }

  void run();
  // Runs the nodes at positions [begin, end) of the graph's (topological) node list, never
  // recorded or replayed; both must be boundaries. Equals the same positions of run() when every
  // value in live_across(begin) holds what a full run left there.
  void run_range(std::size_t begin, std::size_t end);
  std::size_t node_count() const { return graph_.nodes().size(); }
  // Whether a step starts at node position `pos` (or pos is node_count()): where a run may stop
  // and resume.
  bool boundary(std::size_t pos) const;
  // Steps that run several nodes as one (0 when nothing fused).
  std::size_t fused_steps() const { return fused_.size(); }
  // The boundary where the first step that reads `v` starts; node_count() when no node does.
  std::size_t first_reader(ValueId v) const { return first_use_.at(static_cast<std::size_t>(v)); }
  // The activations produced before position `pos` and read at or after it (or kept as outputs):
  // exactly what must hold its clean contents for run_range(pos, end) to equal a full run. The
  // plan keeps each of their buffers untouched from its producer until its last reader.
  std::vector<ValueId> live_across(std::size_t pos) const;
  Backend& backend() const { return backend_; }
  // Where the backend can record (CUDA graphs), the second run is recorded and later runs replay
  // it; binding a tensor with different storage records afresh.
  void set_graph_replay(bool on) { graph_replay_ = on; recording_.reset(); }
  bool replaying() const { return recording_ != nullptr; }
  const Tensor& get(ValueId v) const;
  Tensor& get(ValueId v);

  // Bytes of activation memory the plan needs (the sum of its reusable buffers), and the bytes
  // that keeping every activation alive would take.
  std::size_t peak_bytes() const { return peak_bytes_; }
  std::size_t unplanned_bytes() const { return unplanned_bytes_; }

 private:
  // Graph nodes [begin, end) run as one node: the graph's own, or fused_[fused] when fused >= 0.
  struct Step {
    std::size_t begin = 0, end = 0;
    int fused = -1;
  };
  const Node& node_of(const Step& s) const;
  void plan(const std::vector<ValueId>& outputs);
  void run_steps(std::size_t begin, std::size_t end);

  const Graph& graph_;
  Backend& backend_;
  std::vector<Node> fused_;          // the conv2d_bn nodes that replace fused chains
  std::vector<Step> steps_;          // in node order, covering every node once
  std::vector<int> step_at_;         // per node position (and node count): its step, or -1 inside one
  std::vector<Tensor> tensors_;     // per value: bound tensor or view into a buffer
  std::vector<Tensor> buffers_;     // reusable activation buffers
  std::vector<std::size_t> first_use_;  // per value: the first node reading it (or node count)
  std::vector<int> last_use_;           // per value: the last node reading it; node count for outputs
  std::size_t peak_bytes_ = 0;
  std::size_t unplanned_bytes_ = 0;
  bool graph_replay_ = false;
  int runs_ = 0;
  std::unique_ptr<Backend::Recording> recording_;
};

}  // namespace safnet
