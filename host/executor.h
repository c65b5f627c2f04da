// Executor: runs a Graph on one backend with activation memory planned by liveness.
// Several executors may share one Graph; each owns its activations and its bindings.
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
  Executor(const Graph& graph, std::vector<ValueId> outputs, Backend& backend = cpu_backend());

  // Binds every param/state value of the graph to the tensor of the same name (shared storage),
  // which must live on the executor's device.
  // A param may be bound in a storage dtype (f16, bf16, fixed): conv2d and linear read it
  // through their weight view.
  void bind_params(ParamStore& store);
  void bind(ValueId v, Tensor t);
  void set_input(ValueId v, Tensor t) { bind(v, std::move(t)); }

  void run();
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
  void plan(const std::vector<ValueId>& outputs);
  void run_nodes();

  const Graph& graph_;
  Backend& backend_;
  std::vector<Tensor> tensors_;     // per value: bound tensor or view into a buffer
  std::vector<Tensor> buffers_;     // reusable activation buffers
  std::size_t peak_bytes_ = 0;
  std::size_t unplanned_bytes_ = 0;
  bool graph_replay_ = false;
  int runs_ = 0;
  std::unique_ptr<Backend::Recording> recording_;
};

}  // namespace safnet
