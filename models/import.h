// Import of PyTorch state dicts (written to safetensors by tools/export_torch.py) as safnet
// checkpoints of a named architecture, checked name by name and shape by shape.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "host/safetensors.h"
#include "models/checkpoint.h"

namespace safnet {

struct ImportOptions {
  // 0: the model's classes are the classifier's rows in the file. Otherwise the model has this
  // many classes, and a classifier of another size in the file is replaced by a freshly
  // initialised one (the usual start of fine-tuning on a new data set).
  int classes = 0;
  std::uint64_t seed = 0;  // of a re-initialised classifier
};

struct ImportResult {
  Checkpoint checkpoint;
  std::vector<std::string> reinitialised;  // parameters not taken from the file
  std::vector<std::string> ignored;        // tensors of the file deliberately skipped
};

// `cfg` names the architecture, its input geometry and SAF; its classes come from `opt` or the
// file. Tensors may be F32, F64, F16 or BF16 (all become f32); `num_batches_tracked` is ignored.
// Every missing, unexpected and wrong-shaped tensor is listed in one error naming the file.
ImportResult import_state_dict(const SafetensorsFile& f, ModelConfig cfg, const ImportOptions& opt,
                               const std::string& path_for_errors);
ImportResult import_state_dict(const std::string& path, const ModelConfig& cfg, const ImportOptions& opt);

// The parameter names of the model's classifier (the last linear layer): weight, then bias or "".
std::pair<std::string, std::string> classifier_names(const ModelConfig& cfg);

}  // namespace safnet
