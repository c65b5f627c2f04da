// Liveness-based activation memory planning and the node-by-node run loop.
#include "host/executor.h"

#include <algorithm>

#include "host/check.h"
#include "host/fusion.h"

namespace safnet {

Executor::Executor(const Graph& graph, std::vector<ValueId> outputs, Backend& backend, bool fuse)
    : graph_(graph), backend_(backend) {
  tensors_.resize(graph.values().size());
  const std::size_t count = graph.nodes().size();
  std::vector<FusedRun> runs;
  if (fuse && backend.fuses_conv_epilogues()) runs = find_conv_epilogues(graph, outputs);
  std::size_t next = 0;
  for (std::size_t pos = 0; pos < count;) {
    if (next < runs.size() && runs[next].begin == pos) {
      steps_.push_back(Step{pos, runs[next].end, static_cast<int>(fused_.size())});
      fused_.push_back(std::move(runs[next].node));
      pos = runs[next++].end;
    } else {
      steps_.push_back(Step{pos, pos + 1, -1});
      ++pos;
    }
  }
  step_at_.assign(count + 1, -1);
  for (std::size_t s = 0; s < steps_.size(); ++s) step_at_[steps_[s].begin] = static_cast<int>(s);
  step_at_[count] = static_cast<int>(steps_.size());
  plan(outputs);
}

const Node& Executor::node_of(const Step& s) const {
  return s.fused >= 0 ? fused_[static_cast<std::size_t>(s.fused)] : graph_.nodes()[s.begin];
}

bool Executor::boundary(std::size_t pos) const { return pos < step_at_.size() && step_at_[pos] >= 0; }

void Executor::plan(const std::vector<ValueId>& outputs) {
  const auto& values = graph_.values();
  const auto& nodes = graph_.nodes();
  const int kForever = static_cast<int>(nodes.size());
  // Node positions for live_across; the step where each value is last read for the buffers.
  std::vector<int> last_use(values.size(), -1);
  for (std::size_t i = 0; i < nodes.size(); ++i)
    for (ValueId v : nodes[i].in) last_use[static_cast<std::size_t>(v)] = static_cast<int>(i);
  for (ValueId v : outputs) last_use[static_cast<std::size_t>(v)] = kForever;
  last_use_ = last_use;
  const int kNever = static_cast<int>(steps_.size());
  std::vector<int> last_step(values.size(), -1);
  first_use_.assign(values.size(), nodes.size());
  for (std::size_t s = 0; s < steps_.size(); ++s)
    for (ValueId v : node_of(steps_[s]).in) {
      last_step[static_cast<std::size_t>(v)] = static_cast<int>(s);
      first_use_[static_cast<std::size_t>(v)] = std::min(first_use_[static_cast<std::size_t>(v)], steps_[s].begin);
    }
  for (ValueId v : outputs) last_step[static_cast<std::size_t>(v)] = kNever;

  // Greedy best fit: a step's outputs take the smallest free buffer that holds them (growing
  // the largest free one if none does); values die after their last reader.
  std::vector<std::size_t> buffer_size;
  std::vector<bool> buffer_free;
  std::vector<int> buffer_of(values.size(), -1);
  std::vector<std::vector<ValueId>> dies_at(steps_.size());
  for (std::size_t v = 0; v < values.size(); ++v)
    if (values[v].kind == ValueKind::activation && last_step[v] >= 0 && last_step[v] < kNever)
      dies_at[static_cast<std::size_t>(last_step[v])].push_back(static_cast<ValueId>(v));

  for (std::size_t i = 0; i < steps_.size(); ++i) {
    for (ValueId o : node_of(steps_[i]).out) {
      const Value& val = values[static_cast<std::size_t>(o)];
      const std::size_t need = static_cast<std::size_t>(shape_numel(val.shape)) * val.dtype.size();
      unplanned_bytes_ += need;
      int best = -1;
      for (std::size_t b = 0; b < buffer_size.size(); ++b) {
        if (!buffer_free[b]) continue;
        const bool fits = buffer_size[b] >= need;
        if (best < 0) { best = static_cast<int>(b); continue; }
        const std::size_t cur = buffer_size[static_cast<std::size_t>(best)];
        const bool best_fits = cur >= need;
        if ((fits && (!best_fits || buffer_size[b] < cur)) || (!fits && !best_fits && buffer_size[b] > cur))
          best = static_cast<int>(b);
      }
      if (best < 0) {
        buffer_size.push_back(need);
        buffer_free.push_back(false);
        best = static_cast<int>(buffer_size.size() - 1);
      }
      buffer_size[static_cast<std::size_t>(best)] = std::max(buffer_size[static_cast<std::size_t>(best)], need);
      buffer_free[static_cast<std::size_t>(best)] = false;
      buffer_of[static_cast<std::size_t>(o)] = best;
      // An output nobody reads dies at once, after the step has written it.
      if (last_step[static_cast<std::size_t>(o)] < 0) dies_at[i].push_back(o);
    }
    for (ValueId v : dies_at[i]) buffer_free[static_cast<std::size_t>(buffer_of[static_cast<std::size_t>(v)])] = true;
  }

  for (std::size_t s : buffer_size) {
    buffers_.push_back(backend_.zeros(Shape{static_cast<std::int64_t>(s)}, DType::u8()));
    peak_bytes_ += s;
  }
  for (std::size_t v = 0; v < values.size(); ++v)
    if (buffer_of[v] >= 0)
      tensors_[v] = Tensor::view_of(buffers_[static_cast<std::size_t>(buffer_of[v])], values[v].shape, values[v].dtype);
}

void Executor::bind_params(ParamStore& store) {
  const auto& values = graph_.values();
  for (std::size_t v = 0; v < values.size(); ++v) {
    if (values[v].kind != ValueKind::param && values[v].kind != ValueKind::state) continue;
    bind(static_cast<ValueId>(v), store.at(values[v].name).value);
  }
}

void Executor::bind(ValueId v, Tensor t) {
  const Value& val = graph_.value(v);
  SAFNET_CHECK(val.kind != ValueKind::activation, "cannot bind activation ", val.name);
  if (!(t.device() == backend_.device()))
    fail(val.name, ": bound tensor lives on ", t.device().str(), ", the executor runs on ", backend_.device().str());
  if (recording_ && tensors_[static_cast<std::size_t>(v)].device_raw() != t.device_raw()) recording_.reset();
  if (t.shape() != val.shape)
    fail(val.name, ": bound tensor has shape ", shape_str(t.shape()), ", the graph expects ", shape_str(val.shape));
  if (val.kind == ValueKind::input && t.dtype() != val.dtype)
    fail(val.name, ": bound tensor has dtype ", t.dtype().name(), ", the graph expects ", val.dtype.name());
  tensors_[static_cast<std::size_t>(v)] = std::move(t);
}

void Executor::run() {
  if (graph_replay_ && recording_) {
    recording_->replay();
    return;
  }
  // The first run allocates whatever kernels cache; the second can then be recorded.
  if (graph_replay_ && runs_ > 0) {
    recording_ = backend_.record([this] { run_steps(0, steps_.size()); });
    if (recording_) {
      recording_->replay();
      return;
    }
  }
  run_steps(0, steps_.size());
  ++runs_;
}

void Executor::run_range(std::size_t begin, std::size_t end) {
  SAFNET_CHECK(begin <= end && end <= graph_.nodes().size(), "run_range(", begin, ", ", end, ") of ",
               graph_.nodes().size(), " nodes");
  SAFNET_CHECK(boundary(begin) && boundary(end), "run_range(", begin, ", ", end, "): a position inside a fused step");
  run_steps(static_cast<std::size_t>(step_at_[begin]), static_cast<std::size_t>(step_at_[end]));
}

std::vector<ValueId> Executor::live_across(std::size_t pos) const {
  SAFNET_CHECK(boundary(pos), "live_across(", pos, "): a position inside a fused step");
  std::vector<ValueId> live;
  const auto& values = graph_.values();
  for (std::size_t v = 0; v < values.size(); ++v)
    if (values[v].kind == ValueKind::activation && values[v].producer >= 0 &&
        static_cast<std::size_t>(values[v].producer) < pos && last_use_[v] >= 0 &&
        static_cast<std::size_t>(last_use_[v]) >= pos)
      live.push_back(static_cast<ValueId>(v));
  return live;
}

void Executor::run_steps(std::size_t begin, std::size_t end) {
  std::vector<Tensor*> in, out;
  for (std::size_t i = begin; i < end; ++i) {
    const Node& n = node_of(steps_[i]);
    in.clear();
    out.clear();
    for (ValueId v : n.in) {
      Tensor& t = tensors_[static_cast<std::size_t>(v)];
      if (!t.defined()) fail(graph_.value(v).name, ": not bound before run");
      in.push_back(&t);
    }
    for (ValueId v : n.out) out.push_back(&tensors_[static_cast<std::size_t>(v)]);
    backend_.push_range(n.name);
    backend_.run_node(n, in, out);
    backend_.pop_range();
  }
}

const Tensor& Executor::get(ValueId v) const { return tensors_.at(static_cast<std::size_t>(v)); }
Tensor& Executor::get(ValueId v) { return tensors_.at(static_cast<std::size_t>(v)); }

}  // namespace safnet
