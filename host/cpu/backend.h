// The CPU backend's dispatch: runs one graph node on host tensors.
#pragma once
#include <vector>

#include "host/graph.h"

namespace safnet::cpu {

void run_node(const Node& node, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out);

}  // namespace safnet::cpu
