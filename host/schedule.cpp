// Learning-rate schedules.
#include "host/schedule.h"

#include <cmath>

#include "host/check.h"

namespace safnet {

float schedule_lr(const ScheduleConfig& s, double epoch, int total_epochs) {
  if (s.warmup_epochs > 0 && epoch < s.warmup_epochs)
    return static_cast<float>(s.base_lr * epoch / s.warmup_epochs);
  if (s.kind == "constant") return s.base_lr;
  if (s.kind == "cosine") {
    const double span = total_epochs - s.warmup_epochs;
    const double t = span > 0 ? std::min(1.0, (epoch - s.warmup_epochs) / span) : 1.0;
    return static_cast<float>(s.min_lr + (s.base_lr - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * t)));
  }
  if (s.kind == "step") {
    double lr = s.base_lr;
    for (int m : s.milestones)
      if (epoch >= m) lr *= s.gamma;
    return static_cast<float>(lr);
  }
  fail("unknown schedule '", s.kind, "' (valid: cosine step constant)");
}

}  // namespace safnet
