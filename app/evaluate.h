// Test-set evaluation of a model: top-1, top-5 and mean loss over a whole split.
#pragma once
#include <vector>

#include "data/dataset.h"
#include "app/plan.h"

namespace safnet {

struct Metrics {
  double top1 = 0, top5 = 0;         // percent
  double loss = 0;                   // mean softmax cross-entropy
  std::int64_t n = 0;
  std::int64_t nonfinite_logits = 0;  // images with a NaN or infinite logit
};

// A whole split normalised once, so repeated evaluations (fault trials) skip the conversion.
struct EvalSet {
  Tensor images;                     // f32 (N, C, H, W)
  std::vector<std::int32_t> labels;  // (N)
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};
EvalSet make_eval_set(const Dataset& data, const Normalization& norm);

// Evaluates a model over whole splits, reusing one plan per batch size, and reduces the metrics
// on the device that ran the model. Not thread-safe: one per thread.
class Evaluator {
 public:
  Evaluator(ModelConfig cfg, int batch, Backend& backend, NanLogits rule = NanLogits::as_torch)
      : plans_(std::move(cfg), PlanOptions{}, backend), batch_(batch), rule_(rule) {}
  // Parameters may be bound in any storage dtype (f32, f16, bf16, fixed): weights are read
  // through the model's SAF as they load. They live on the backend's device; `data` on the host.
  Metrics run(ParamStore& params, const EvalSet& data);

 private:
  ModelPlans plans_;
  int batch_;
  NanLogits rule_;
  Tensor sums_;  // MetricSums on the device
};

// The metrics of sums gathered over n images.
Metrics metrics_from(const MetricSums& sums, std::int64_t n);

}  // namespace safnet
