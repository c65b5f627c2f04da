// Checkpoints: a safetensors file holding raw weights, batch-norm state, optimizer state and
// metadata (architecture, SAF, data set, progress, the full training configuration).
#pragma once
#include <map>
#include <optional>
#include <string>

#include "host/optim.h"
#include "host/params.h"
#include "models/model.h"

namespace safnet {

struct Checkpoint {
  ModelConfig model;
  ParamStore params;
  std::map<std::string, Tensor> optim_slots;  // "<param>.<slot>"
  std::int64_t optim_steps = 0;
  // Free-form metadata: dataset, epoch, step_in_epoch, top1, config (JSON of the run's flags) ...
  std::map<std::string, std::string> meta;
};

// Written atomically; never leaves a half-written file in place of a good one.
void save_checkpoint(const std::string& path, const Checkpoint& ck);
// Validates the file against its declared architecture: every parameter present with the right
// shape, nothing unexpected. Errors name the file and the tensor.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace safnet
