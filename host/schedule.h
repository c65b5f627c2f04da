// Learning-rate schedules: cosine (with linear warmup) and step decay, evaluated per iteration.
#pragma once
#include <string>
#include <vector>

namespace safnet {

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine | step | constant
  float base_lr = 0.1f;
  float min_lr = 0.0f;          // cosine floor
  double warmup_epochs = 0.0;   // linear warmup from 0, for cosine and step
  std::vector<int> milestones;  // step: epochs at which lr *= gamma
  float gamma = 0.1f;
};

// lr at fractional epoch `epoch` (iteration / iterations per epoch) of `total_epochs`.
float schedule_lr(const ScheduleConfig& s, double epoch, int total_epochs);

}  // namespace safnet
