// Graph construction with shape checks at build time, and the backward rules of every op.
#include "host/graph.h"

#include "host/check.h"

namespace safnet {

const char* op_name(Op op) {
  switch (op) {
    case Op::conv2d: return "conv2d";
    case Op::conv2d_bwd_data: return "conv2d_bwd_data";
    case Op::conv2d_bwd_weight: return "conv2d_bwd_weight";
    case Op::linear: return "linear";
    case Op::linear_bwd_data: return "linear_bwd_data";
    case Op::linear_bwd_weight: return "linear_bwd_weight";
    case Op::batchnorm_train: return "batchnorm_train";
    case Op::batchnorm_eval: return "batchnorm_eval";
    case Op::conv2d_bn: return "conv2d_bn";
    case Op::batchnorm_bwd: return "batchnorm_bwd";
    case Op::relu: return "relu";
    case Op::relu_bwd: return "relu_bwd";
    case Op::add: return "add";
    case Op::shortcut_a: return "shortcut_a";
    case Op::shortcut_a_bwd: return "shortcut_a_bwd";
    case Op::global_avgpool: return "global_avgpool";
    case Op::global_avgpool_bwd: return "global_avgpool_bwd";
    case Op::maxpool: return "maxpool";
    case Op::maxpool_bwd: return "maxpool_bwd";
    case Op::reshape: return "reshape";
    case Op::softmax_ce: return "softmax_ce";
    case Op::softmax_ce_bwd: return "softmax_ce_bwd";
  }
  return "?";
}

ValueId Graph::add_value(std::string name, Shape shape, DType dtype, ValueKind kind) {
  Value v;
  v.name = std::move(name);
  v.shape = std::move(shape);
  v.dtype = dtype;
  v.kind = kind;
  v.needs_grad = kind == ValueKind::param;
  values_.push_back(std::move(v));
  return static_cast<ValueId>(values_.size() - 1);
}

ValueId Graph::input(const std::string& name, Shape shape, DType dtype) {
  return add_value(name, std::move(shape), dtype, ValueKind::input);
}
ValueId Graph::param(const std::string& name, Shape shape) {
  SAFNET_CHECK(find(name) < 0, "duplicate value name ", name);
  return add_value(name, std::move(shape), DType::f32(), ValueKind::param);
}
ValueId Graph::state(const std::string& name, Shape shape) {
  SAFNET_CHECK(find(name) < 0, "duplicate value name ", name);
  return add_value(name, std::move(shape), DType::f32(), ValueKind::state);
}

ValueId Graph::find(const std::string& name) const {
  for (std::size_t i = 0; i < values_.size(); ++i)
    if (values_[i].kind != ValueKind::activation && values_[i].name == name) return static_cast<ValueId>(i);
  return -1;
}

std::vector<ValueId> Graph::add_node(Op op, std::vector<ValueId> in, std::vector<std::pair<Shape, DType>> outs,
                                     OpAttrs attrs, std::string name) {
  bool needs_grad = false;
  for (ValueId v : in) {
    SAFNET_CHECK(v >= 0 && v < static_cast<ValueId>(values_.size()), "bad input of ", op_name(op));
    needs_grad = needs_grad || values_[static_cast<std::size_t>(v)].needs_grad;
  }
  const int node = static_cast<int>(nodes_.size());
  std::vector<ValueId> out_ids;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const ValueId id = add_value(name + (outs.size() > 1 ? "#" + std::to_string(i) : ""),
                                 std::move(outs[i].first), outs[i].second, ValueKind::activation);
    values_[static_cast<std::size_t>(id)].producer = node;
    values_[static_cast<std::size_t>(id)].needs_grad = needs_grad;
    out_ids.push_back(id);
  }
  nodes_.push_back(Node{op, std::move(in), out_ids, attrs, std::move(name)});
  return out_ids;
}

ValueId Graph::conv2d(ValueId x, ValueId w, OpAttrs a, const std::string& name) {
  const Shape& xs = value(x).shape;
  const Shape& ws = value(w).shape;
  SAFNET_CHECK(xs.size() == 4 && ws.size() == 4 && xs[1] == ws[1], name, ": conv2d x ", shape_str(xs), " w ",
               shape_str(ws));
  const std::int64_t oh = (xs[2] + 2 * a.pad - ws[2]) / a.stride + 1;
  const std::int64_t ow = (xs[3] + 2 * a.pad - ws[3]) / a.stride + 1;
  SAFNET_CHECK(oh > 0 && ow > 0, name, ": conv2d output would be empty");
  return add_node(Op::conv2d, {x, w}, {{{xs[0], ws[0], oh, ow}, DType::f32()}}, a, name)[0];
}

ValueId Graph::linear(ValueId x, ValueId w, ValueId b, OpAttrs a, const std::string& name) {
  const Shape& xs = value(x).shape;
  const Shape& ws = value(w).shape;
  SAFNET_CHECK(xs.size() == 2 && ws.size() == 2 && xs[1] == ws[1], name, ": linear x ", shape_str(xs), " w ",
               shape_str(ws));
  std::vector<ValueId> in{x, w};
  if (b >= 0) {
    SAFNET_CHECK(value(b).shape == Shape{ws[0]}, name, ": bias shape");
    in.push_back(b);
  }
  return add_node(Op::linear, in, {{{xs[0], ws[0]}, DType::f32()}}, a, name)[0];
}

ValueId Graph::batchnorm(ValueId x, ValueId gamma, ValueId beta, ValueId rmean, ValueId rvar, bool train,
                         OpAttrs a, const std::string& name) {
  const Shape& xs = value(x).shape;
  SAFNET_CHECK(xs.size() >= 2, name, ": batchnorm needs (N, C, ...)");
  for (ValueId p : {gamma, beta, rmean, rvar}) SAFNET_CHECK(value(p).shape == Shape{xs[1]}, name, ": bn shape");
  if (train)
    return add_node(Op::batchnorm_train, {x, gamma, beta, rmean, rvar},
                    {{xs, DType::f32()}, {{xs[1]}, DType::f32()}, {{xs[1]}, DType::f32()}}, a, name)[0];
  return add_node(Op::batchnorm_eval, {x, gamma, beta, rmean, rvar}, {{xs, DType::f32()}}, a, name)[0];
}

ValueId Graph::relu(ValueId x, const std::string& name) {
  return add_node(Op::relu, {x}, {{value(x).shape, DType::f32()}}, {}, name)[0];
}

ValueId Graph::add(ValueId a, ValueId b, const std::string& name) {
  SAFNET_CHECK(value(a).shape == value(b).shape, name, ": add ", shape_str(value(a).shape), " + ",
               shape_str(value(b).shape));
  return add_node(Op::add, {a, b}, {{value(a).shape, DType::f32()}}, {}, name)[0];
}

ValueId Graph::shortcut_a(ValueId x, int stride, int k, const std::string& name) {
  const Shape& xs = value(x).shape;
  SAFNET_CHECK(xs.size() == 4 && k >= xs[1] && (k - xs[1]) % 2 == 0, name, ": shortcut_a to ", k, " channels");
  OpAttrs a;
  a.stride = stride;
  return add_node(Op::shortcut_a, {x},
                  {{{xs[0], k, (xs[2] + stride - 1) / stride, (xs[3] + stride - 1) / stride}, DType::f32()}}, a,
                  name)[0];
}

ValueId Graph::global_avgpool(ValueId x, const std::string& name) {
  const Shape& xs = value(x).shape;
  SAFNET_CHECK(xs.size() == 4, name, ": global_avgpool needs (N, C, H, W)");
  return add_node(Op::global_avgpool, {x}, {{{xs[0], xs[1]}, DType::f32()}}, {}, name)[0];
}

ValueId Graph::maxpool(ValueId x, int kernel, int stride, int pad, const std::string& name) {
  const Shape& xs = value(x).shape;
  SAFNET_CHECK(xs.size() == 4, name, ": maxpool needs (N, C, H, W)");
  OpAttrs a;
  a.kernel = kernel;
  a.stride = stride;
  a.pad = pad;
  const Shape ys{xs[0], xs[1], (xs[2] + 2 * pad - kernel) / stride + 1, (xs[3] + 2 * pad - kernel) / stride + 1};
  return add_node(Op::maxpool, {x}, {{ys, DType::f32()}, {ys, DType::i32()}}, a, name)[0];
}

ValueId Graph::reshape(ValueId x, Shape shape, const std::string& name) {
  SAFNET_CHECK(shape_numel(shape) == shape_numel(value(x).shape), name, ": reshape ", shape_str(value(x).shape),
               " to ", shape_str(shape));
  return add_node(Op::reshape, {x}, {{std::move(shape), DType::f32()}}, {}, name)[0];
}

ValueId Graph::flatten(ValueId x, const std::string& name) {
  const Shape& xs = value(x).shape;
  return reshape(x, {xs[0], shape_numel(xs) / xs[0]}, name);
}

std::pair<ValueId, ValueId> Graph::softmax_ce(ValueId logits, ValueId labels, float smoothing,
                                              const std::string& name) {
  const Shape& ls = value(logits).shape;
  SAFNET_CHECK(ls.size() == 2 && value(labels).shape == Shape{ls[0]} && value(labels).dtype == DType::i32(),
               name, ": softmax_ce needs logits (N, K) and i32 labels (N)");
  OpAttrs a;
  a.smoothing = smoothing;
  auto out = add_node(Op::softmax_ce, {logits, labels}, {{{1}, DType::f32()}, {ls, DType::f32()}}, a, name);
  return {out[0], out[1]};
}

std::map<ValueId, ValueId> Graph::backward(ValueId loss) {
  const Value& lv = value(loss);
  SAFNET_CHECK(lv.producer >= 0 && nodes_[static_cast<std::size_t>(lv.producer)].op == Op::softmax_ce &&
                   nodes_[static_cast<std::size_t>(lv.producer)].out[0] == loss,
               "backward needs the loss output of softmax_ce");
  // grad[v] = value holding d loss / d v, or -1. The loss itself is seeded implicitly.
  std::vector<ValueId> grad(values_.size(), -1);
  grad[static_cast<std::size_t>(loss)] = loss;
  const int forward_nodes = lv.producer + 1;
  for (int i = forward_nodes - 1; i >= 0; --i) {
    const Node node = nodes_[static_cast<std::size_t>(i)];  // copy: emit_backward appends nodes
    bool has_grad = false;
    for (ValueId o : node.out) has_grad = has_grad || grad[static_cast<std::size_t>(o)] >= 0;
    if (has_grad) emit_backward(node, grad);
  }
  std::map<ValueId, ValueId> out;
  for (std::size_t v = 0; v < values_.size() && v < grad.size(); ++v)
    if (values_[v].kind == ValueKind::param) {
      SAFNET_CHECK(grad[v] >= 0, "parameter ", values_[v].name, " does not reach the loss");
      out[static_cast<ValueId>(v)] = grad[v];
    }
  return out;
}

void Graph::emit_backward(const Node& n, std::vector<ValueId>& grad) {
  auto g_of = [&](ValueId v) { return grad[static_cast<std::size_t>(v)]; };
  // Accumulates a contribution into grad[v], adding when v already has one (fan-out).
  auto give = [&](ValueId v, ValueId g) {
    if (!value(v).needs_grad) return;
    if (grad.size() < values_.size()) grad.resize(values_.size(), -1);
    ValueId& slot = grad[static_cast<std::size_t>(v)];
    slot = slot < 0 ? g : add(slot, g, value(v).name + ".grad_sum");
    if (grad.size() < values_.size()) grad.resize(values_.size(), -1);
  };
  auto needs = [&](ValueId v) { return value(v).needs_grad; };
  const std::string gname = n.name + ".grad";
  switch (n.op) {
    case Op::conv2d: {
      const ValueId dy = g_of(n.out[0]);
      if (needs(n.in[0]))
        give(n.in[0], add_node(Op::conv2d_bwd_data, {dy, n.in[1]}, {{value(n.in[0]).shape, DType::f32()}}, n.attrs,
                               gname + "_data")[0]);
      if (needs(n.in[1]))
        give(n.in[1], add_node(Op::conv2d_bwd_weight, {n.in[0], dy, n.in[1]},
                               {{value(n.in[1]).shape, DType::f32()}}, n.attrs, gname + "_weight")[0]);
      break;
    }
    case Op::linear: {
      const ValueId dy = g_of(n.out[0]);
      if (needs(n.in[0]))
        give(n.in[0], add_node(Op::linear_bwd_data, {dy, n.in[1]}, {{value(n.in[0]).shape, DType::f32()}}, n.attrs,
                               gname + "_data")[0]);
      std::vector<std::pair<Shape, DType>> outs{{value(n.in[1]).shape, DType::f32()}};
      if (n.in.size() > 2) outs.push_back({value(n.in[2]).shape, DType::f32()});
      auto gw = add_node(Op::linear_bwd_weight, {n.in[0], dy, n.in[1]}, outs, n.attrs, gname + "_weight");
      give(n.in[1], gw[0]);
      if (n.in.size() > 2) give(n.in[2], gw[1]);
      break;
    }
    case Op::batchnorm_train: {
      const Shape& cs = value(n.in[1]).shape;
      auto g = add_node(Op::batchnorm_bwd, {n.in[0], g_of(n.out[0]), n.in[1], n.out[1], n.out[2]},
                        {{value(n.in[0]).shape, DType::f32()}, {cs, DType::f32()}, {cs, DType::f32()}}, n.attrs,
                        gname);
      give(n.in[0], g[0]);
      give(n.in[1], g[1]);
      give(n.in[2], g[2]);
      break;
    }
    case Op::batchnorm_eval: fail(n.name, ": backward through batch norm in eval mode is not supported");
    case Op::relu:
      give(n.in[0], add_node(Op::relu_bwd, {n.out[0], g_of(n.out[0])}, {{value(n.in[0]).shape, DType::f32()}}, {},
                             gname)[0]);
      break;
    case Op::add:
      give(n.in[0], g_of(n.out[0]));
      give(n.in[1], g_of(n.out[0]));
      break;
    case Op::shortcut_a:
      give(n.in[0], add_node(Op::shortcut_a_bwd, {g_of(n.out[0])}, {{value(n.in[0]).shape, DType::f32()}}, n.attrs,
                             gname)[0]);
      break;
    case Op::global_avgpool:
      give(n.in[0], add_node(Op::global_avgpool_bwd, {g_of(n.out[0])}, {{value(n.in[0]).shape, DType::f32()}}, {},
                             gname)[0]);
      break;
    case Op::maxpool:
      give(n.in[0], add_node(Op::maxpool_bwd, {g_of(n.out[0]), n.out[1]}, {{value(n.in[0]).shape, DType::f32()}},
                             n.attrs, gname)[0]);
      break;
    case Op::reshape:
      give(n.in[0], add_node(Op::reshape, {g_of(n.out[0])}, {{value(n.in[0]).shape, DType::f32()}}, {}, gname)[0]);
      break;
    case Op::softmax_ce:
      give(n.in[0], add_node(Op::softmax_ce_bwd, {n.out[1], n.in[1]}, {{value(n.in[0]).shape, DType::f32()}},
                             n.attrs, gname)[0]);
      break;
    default: fail(n.name, ": no backward rule for ", op_name(n.op));
  }
}

}  // namespace safnet
