// Test-set evaluation of a model: top-1, top-5 and mean loss over a whole split.
#pragma once
#include <map>
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "host/executor.h"
#include "models/model.h"

namespace safnet {

struct Metrics {
  double top1 = 0, top5 = 0;  // percent
  double loss = 0;            // mean softmax cross-entropy
  std::int64_t n = 0;
};

// A whole split normalised once, so repeated evaluations (fault trials) skip the conversion.
struct EvalSet {
  Tensor images;                     // f32 (N, C, H, W)
  std::vector<std::int32_t> labels;  // (N)
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};
EvalSet make_eval_set(const Dataset& data, const Normalization& norm);

// Holds one graph and executor per batch size it has seen (the full batch and the remainder),
// so evaluating many times costs no rebuilding. Not thread-safe: one per thread.
class Evaluator {
 public:
  Evaluator(ModelConfig cfg, int batch, Backend& backend = cpu_backend())
      : cfg_(std::move(cfg)), batch_(batch), backend_(backend) {}
  // Parameters may be bound in any storage dtype (f32, f16, bf16, fixed): weights are read
  // through the model's SAF as they load. They live on the backend's device; `data` on the host.
  Metrics run(ParamStore& params, const EvalSet& data);

 private:
  struct Plan {
    Graph graph;
    ValueId images = -1, labels = -1, logits = -1, loss = -1;
    std::unique_ptr<Executor> exec;
    Tensor images_on_device, labels_on_device;  // input staging off the CPU
  };
  Plan& plan(int n);
  ModelConfig cfg_;
  int batch_;
  Backend& backend_;
  std::map<int, std::unique_ptr<Plan>> plans_;
};

}  // namespace safnet
