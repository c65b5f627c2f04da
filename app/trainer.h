// The training loop: epochs of SGD/AdamW over a loader, per-epoch test evaluation, a JSONL log,
// atomic checkpoints every epoch and on interrupt, and exact resume from a checkpoint.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "host/backend.h"
#include "host/optim.h"
#include "host/schedule.h"
#include "models/checkpoint.h"

namespace safnet {

struct TrainConfig {
  ModelConfig model;
  OptimConfig optim;
  ScheduleConfig schedule;
  int epochs = 200;
  int batch = 128;
  float label_smoothing = 0.0f;
  AugmentConfig augment;
  std::uint64_t seed = 0;
  std::string out_dir;
  std::string dataset;                        // name, recorded in the checkpoint
  std::map<std::string, std::string> flags;   // the full command line, recorded in the checkpoint
  bool quiet = false;                         // no progress line
};

struct TrainResult {
  int epochs_done = 0;
  bool interrupted = false;
  double final_top1 = 0, final_top5 = 0, final_loss = 0;
  double first_epoch_loss = 0, last_epoch_loss = 0;  // mean training loss
  std::vector<float> step_losses;                     // every step's batch loss, in order
  double seconds = 0;
};

std::string checkpoint_path(const std::string& out_dir);  // OUT/checkpoint.safetensors
std::string train_log_path(const std::string& out_dir);   // OUT/train_log.jsonl

// Trains on `backend` from `start` (fresh parameters, or a loaded checkpoint to resume from).
TrainResult train(const TrainConfig& cfg, Backend& backend, const Dataset& train_set, const Dataset& test_set,
                  Checkpoint start);

}  // namespace safnet
