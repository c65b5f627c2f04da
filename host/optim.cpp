// SGD and AdamW updates, written to match torch.optim.SGD / torch.optim.AdamW step for step.
#include "host/optim.h"

#include <cmath>

#include "host/check.h"

namespace safnet {

Optimizer::Optimizer(OptimConfig cfg) : cfg_(std::move(cfg)) {
  if (cfg_.kind != "sgd" && cfg_.kind != "adamw") fail("unknown optimizer '", cfg_.kind, "' (valid: sgd adamw)");
}

Tensor& Optimizer::slot(const std::string& param, const char* name, const Shape& shape) {
  const std::string key = param + "." + name;
  auto it = slots_.find(key);
  if (it == slots_.end()) it = slots_.emplace(key, Tensor(shape)).first;
  SAFNET_CHECK(it->second.shape() == shape, "optimizer slot ", key, " shape");
  return it->second;
}

void Optimizer::step(ParamStore& params, const std::map<std::string, const Tensor*>& grads, float lr) {
  ++steps_;
  for (ParamInfo& p : params.all()) {
    if (!p.trainable()) continue;
    auto it = grads.find(p.name);
    SAFNET_CHECK(it != grads.end(), "no gradient for ", p.name);
    float* w = p.value.data<float>();
    const float* g = it->second->data<float>();
    const std::int64_t n = p.value.numel();
    const float wd = cfg_.weight_decay;
    if (cfg_.kind == "sgd") {
      float* buf = slot(p.name, "momentum", p.value.shape()).data<float>();
      const float mu = cfg_.momentum;
      // torch: the first step copies the gradient into the buffer instead of decaying zeros;
      // the two agree because the buffer starts at zero and dampening is 0.
      for (std::int64_t j = 0; j < n; ++j) {
        const float d = g[j] + wd * w[j];
        buf[j] = mu * buf[j] + d;
        const float u = cfg_.nesterov ? d + mu * buf[j] : (mu != 0.0f ? buf[j] : d);
        w[j] -= lr * u;
      }
    } else {
      float* m = slot(p.name, "exp_avg", p.value.shape()).data<float>();
      float* v = slot(p.name, "exp_avg_sq", p.value.shape()).data<float>();
      const float b1 = cfg_.beta1, b2 = cfg_.beta2;
      const float bc1 = 1.0f - std::pow(b1, static_cast<float>(steps_));
      const float bc2 = 1.0f - std::pow(b2, static_cast<float>(steps_));
      const float step = lr / bc1;
      const float bc2_sqrt = std::sqrt(bc2);
      for (std::int64_t j = 0; j < n; ++j) {
        w[j] *= 1.0f - lr * wd;
        m[j] = b1 * m[j] + (1.0f - b1) * g[j];
        v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
        w[j] -= step * m[j] / (std::sqrt(v[j]) / bc2_sqrt + cfg_.eps);
      }
    }
  }
}

}  // namespace safnet
