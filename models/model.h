// Model definitions: architecture names, configuration, parameter creation and graph building.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/saf.h"
#include "host/graph.h"
#include "host/params.h"

namespace safnet {

struct ModelConfig {
  std::string arch = "resnet20";  // resnet20 resnet32 resnet44 resnet56 resnet110 resnet18 resnet34 cnn mlp
  int in_channels = 3, height = 32, width = 32, classes = 10;
  Saf saf{};                      // applied to every conv and linear weight ...
  bool saf_first = true;          // ... including the first layer's
  bool saf_last = true;           // ... and the classifier's
};

const std::vector<std::string>& model_names();
// Throws listing valid names when cfg.arch is unknown.
void check_model_config(const ModelConfig& cfg);

// The architecture's native input and classes: 3x224x224 and 1000 (ImageNet) for resnet18/34,
// 3x32x32 and 10 otherwise. Throws listing valid names when arch is unknown.
ModelConfig default_model_config(const std::string& arch);

// Creates the model's parameters and state with their initial values (He normal for conv and
// linear weights, PyTorch's default uniform for linear biases, 1/0 for batch norm).
ParamStore init_params(const ModelConfig& cfg, std::uint64_t seed);
// Appends the forward pass to g for images x (N, C, H, W); returns the logits (N, classes).
// train selects batch statistics (and running-stat updates) in batch norm.
ValueId build_forward(const ModelConfig& cfg, Graph& g, ValueId x, bool train);
// The SAF each weight is read through (Saf{none} for excluded layers and non-weights).
Saf weight_saf(const ModelConfig& cfg, const std::string& param_name);
// The SAF of every conv and linear weight, by parameter name (one graph build for all).
std::map<std::string, Saf> weight_safs(const ModelConfig& cfg);

}  // namespace safnet
