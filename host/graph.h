// A static computation graph with reverse-mode autograd, built once per model and batch size.
//
// Build:   Graph g; auto x = g.input("x", {N, C, H, W}); auto w = g.param("conv1.weight", ...);
//          auto y = g.conv2d(x, w, {.stride = 1, .pad = 1, .saf = saf}, "conv1"); ...
//          auto [loss, probs] = g.softmax_ce(logits, labels, 0.0f);
// Train:   auto grads = g.backward(loss);   // appends the gradient graph; param value -> grad value
// Run:     Executor ex(g, params, outputs); ex.set_input(x, batch); ex.run(); ex.get(loss);
//
// Nodes are appended in execution order, so the node list is already topologically sorted.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cuda/saf.h"
#include "host/dtype.h"
#include "host/tensor.h"

namespace safnet {

using ValueId = int;

enum class ValueKind {
  input,       // bound per run (images, labels)
  param,       // trainable, bound by name from a ParamStore
  state,       // non-trainable, bound by name, may be updated by ops (batch-norm running stats)
  activation,  // produced by a node; memory planned by the Executor
};

struct Value {
  std::string name;
  Shape shape;
  DType dtype;
  ValueKind kind = ValueKind::activation;
  int producer = -1;  // node index, for activations
  bool needs_grad = false;
};

enum class Op {
  conv2d, conv2d_bwd_data, conv2d_bwd_weight,
  linear, linear_bwd_data, linear_bwd_weight,
  batchnorm_train, batchnorm_eval, batchnorm_bwd,
  relu, relu_bwd, add,
  shortcut_a, shortcut_a_bwd,
  global_avgpool, global_avgpool_bwd,
  maxpool, maxpool_bwd,
  reshape,
  softmax_ce, softmax_ce_bwd,
  // conv2d -> batchnorm_eval [-> add] [-> relu] as one node, in: x, w, gamma, beta, running_mean,
  // running_var [, residual]; formed by the executor (host/fusion.h), never by Graph's builders.
  conv2d_bn,
};
const char* op_name(Op op);

// Per-node parameters; each op reads the fields it needs.
struct OpAttrs {
  int stride = 1;
  int pad = 0;
  int kernel = 0;          // pooling window
  Saf saf{};               // weight view of conv2d / linear
  float eps = 1e-5f;       // batch norm
  float momentum = 0.1f;   // batch norm running-average factor
  float smoothing = 0.0f;  // label smoothing of softmax_ce
  bool relu = false;            // conv2d_bn: ReLU last
  bool residual_first = false;  // conv2d_bn: the add reads the residual as its first operand
};

struct Node {
  Op op;
  std::vector<ValueId> in;
  std::vector<ValueId> out;
  OpAttrs attrs;
  std::string name;
};

class Graph {
 public:
  ValueId input(const std::string& name, Shape shape, DType dtype = DType::f32());
  ValueId param(const std::string& name, Shape shape);
  ValueId state(const std::string& name, Shape shape);

  // x (N, C, H, W), w (K, C, R, S) raw weights read through attrs.saf -> (N, K, OH, OW)
  ValueId conv2d(ValueId x, ValueId w, OpAttrs attrs, const std::string& name);
  // x (N, IN), w (OUT, IN) raw weights read through attrs.saf, b (OUT) or -1 -> (N, OUT)
  ValueId linear(ValueId x, ValueId w, ValueId b, OpAttrs attrs, const std::string& name);
  // train: batch statistics, updates running stats; eval: running statistics.
  ValueId batchnorm(ValueId x, ValueId gamma, ValueId beta, ValueId running_mean, ValueId running_var,
                    bool train, OpAttrs attrs, const std::string& name);
  ValueId relu(ValueId x, const std::string& name = "");
  ValueId add(ValueId a, ValueId b, const std::string& name = "");
  // He et al. option A: subsample by stride and zero-pad channels to k.
  ValueId shortcut_a(ValueId x, int stride, int k, const std::string& name = "");
  ValueId global_avgpool(ValueId x, const std::string& name = "");  // (N, C, H, W) -> (N, C)
  ValueId maxpool(ValueId x, int kernel, int stride, int pad, const std::string& name = "");
  ValueId reshape(ValueId x, Shape shape, const std::string& name = "");
  ValueId flatten(ValueId x, const std::string& name = "");  // (N, ...) -> (N, rest)
  // logits (N, K), labels i32 (N) -> {loss (1), probs (N, K)}
  std::pair<ValueId, ValueId> softmax_ce(ValueId logits, ValueId labels, float smoothing,
                                         const std::string& name = "loss");

  // Appends the gradient graph of `loss` (a softmax_ce output; its gradient seed is 1) and
  // returns, for every param, the value holding d loss / d param.
  std::map<ValueId, ValueId> backward(ValueId loss);

  const std::vector<Value>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const Value& value(ValueId v) const { return values_.at(static_cast<std::size_t>(v)); }
  ValueId find(const std::string& name) const;  // -1 if absent

 private:
  ValueId add_value(std::string name, Shape shape, DType dtype, ValueKind kind);
  std::vector<ValueId> add_node(Op op, std::vector<ValueId> in, std::vector<std::pair<Shape, DType>> outs,
                                OpAttrs attrs, std::string name);
  void emit_backward(const Node& node, std::vector<ValueId>& grad);

  std::vector<Value> values_;
  std::vector<Node> nodes_;
};

}  // namespace safnet
