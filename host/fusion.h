// Epilogue fusion for evaluation: each conv2d -> batchnorm_eval [-> add] [-> relu] chain of a
// graph found and expressed as one conv2d_bn node, which a backend that fuses (Backend::
// fuses_conv_epilogues) runs in the convolution's store. In a CIFAR ResNet that is every
// convolution, and the separate passes of batch norm, the residual add and ReLU over memory go.
#pragma once
#include <cstddef>
#include <vector>

#include "host/graph.h"

namespace safnet {

// Graph nodes [begin, end) and the conv2d_bn node that computes their last output.
struct FusedRun {
  std::size_t begin = 0, end = 0;
  Node node;
};

// The chains of `graph` that fuse, in node order. A chain's nodes are consecutive; every value
// inside it has exactly one reader, the chain's next node, and is not in `outputs` (so nothing
// else ever sees it, and training graphs, whose backward reads them, never fuse); the add's other
// operand is ready before the convolution runs.
std::vector<FusedRun> find_conv_epilogues(const Graph& graph, const std::vector<ValueId>& outputs);

}  // namespace safnet
