// Optimizers on raw weights: SGD (momentum, Nesterov, weight decay) and AdamW, PyTorch semantics.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/backend.h"
#include "host/params.h"

namespace safnet {

struct OptimConfig {
  std::string kind = "sgd";  // sgd | adamw
  float momentum = 0.9f;     // sgd
  bool nesterov = false;     // sgd
  float weight_decay = 0.0f; // sgd: L2 added to the gradient; adamw: decoupled
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // adamw
};

class Optimizer {
 public:
  explicit Optimizer(OptimConfig cfg);
  // Updates every trainable parameter of `params` from grads (param name -> d loss / d raw) on
  // `backend`, where the parameters, gradients and slots live.
  void step(ParamStore& params, const std::map<std::string, const Tensor*>& grads, float lr,
            Backend& backend = cpu_backend());

  // Slots for checkpoints, named "<param>.<slot>" (momentum, exp_avg, exp_avg_sq).
  std::map<std::string, Tensor>& slots() { return slots_; }
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t s) { steps_ = s; }
  const OptimConfig& config() const { return cfg_; }

 private:
  Tensor& slot(Backend& backend, const std::string& param, const char* name, const Shape& shape);
  OptimConfig cfg_;
  std::map<std::string, Tensor> slots_;
  std::int64_t steps_ = 0;
};

}  // namespace safnet
