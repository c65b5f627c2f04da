// Pattern match of conv2d -> batchnorm_eval [-> add] [-> relu] over a graph's node list.
#include "host/fusion.h"

#include <algorithm>

namespace safnet {

std::vector<FusedRun> find_conv_epilogues(const Graph& graph, const std::vector<ValueId>& outputs) {
  const auto& nodes = graph.nodes();
  std::vector<int> readers(graph.values().size(), 0);
  for (const Node& n : nodes)
    for (ValueId v : n.in) ++readers[static_cast<std::size_t>(v)];
  for (ValueId v : outputs) ++readers[static_cast<std::size_t>(v)];  // an output is read by the caller
  // Whether `v`'s only reader is node `i`, which reads it once.
  auto only_read_by = [&](ValueId v, std::size_t i) {
    return i < nodes.size() && readers[static_cast<std::size_t>(v)] == 1 &&
           std::count(nodes[i].in.begin(), nodes[i].in.end(), v) == 1;
  };

  std::vector<FusedRun> runs;
  for (std::size_t i = 0; i + 1 < nodes.size(); ++i) {
    const Node& conv = nodes[i];
    const Node& bn = nodes[i + 1];
    if (conv.op != Op::conv2d || bn.op != Op::batchnorm_eval || bn.in[0] != conv.out[0] ||
        !only_read_by(conv.out[0], i + 1))
      continue;
    FusedRun run;
    run.begin = i;
    Node& f = run.node;
    f.op = Op::conv2d_bn;
    f.in = {conv.in[0], conv.in[1], bn.in[1], bn.in[2], bn.in[3], bn.in[4]};
    f.attrs = conv.attrs;
    f.attrs.eps = bn.attrs.eps;
    f.name = conv.name + "+bn";
    std::size_t end = i + 2;
    ValueId last = bn.out[0];
    if (end < nodes.size() && nodes[end].op == Op::add && only_read_by(last, end)) {
      const Node& add = nodes[end];
      const bool first = add.in[1] == last;
      const ValueId residual = first ? add.in[0] : add.in[1];
      const int producer = graph.value(residual).producer;
      if (producer < static_cast<int>(i)) {  // ready before the convolution (or bound, producer -1)
        f.in.push_back(residual);
        f.attrs.residual_first = first;
        f.name += "+add";
        last = add.out[0];
        ++end;
      }
    }
    if (end < nodes.size() && nodes[end].op == Op::relu && only_read_by(last, end)) {
      f.attrs.relu = true;
      f.name += "+relu";
      last = nodes[end].out[0];
      ++end;
    }
    f.out = {last};
    run.end = end;
    runs.push_back(std::move(run));
    i = end - 1;
  }
  return runs;
}

}  // namespace safnet
