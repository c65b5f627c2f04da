// Starting a SAF model from pretrained weights so that it computes the pretrained function.
#pragma once
#include <string>

#include "models/checkpoint.h"

namespace safnet {

enum class InitMode {
  inverse,  // raw = tau^-1(W), clamped where tau^-1 is unbounded (cuda/saf.h): same function at step 0
  raw,      // raw = W
};
InitMode parse_init_mode(const std::string& name);  // "inverse" "raw"; throws listing valid names

// The parameters of a model `cfg` started from the checkpoint `src` (read from `src_path`, named
// in errors). W is the weight the pretrained model computes with: its raw weight read through
// its own SAF. Only weights that carry a SAF in `cfg` (weight_saf) are inverted; biases, batch
// norm parameters and running statistics are copied. The architectures must agree (arch, input
// channels, classes, every parameter's shape). No optimizer state or progress carries over.
Checkpoint init_from(const Checkpoint& src, const ModelConfig& cfg, InitMode mode, const std::string& src_path);

}  // namespace safnet
