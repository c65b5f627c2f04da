// SGD and AdamW updates, written to match torch.optim.SGD / torch.optim.AdamW step for step.
#include "host/optim.h"

#include <cmath>

#include "host/check.h"

namespace safnet {

Optimizer::Optimizer(OptimConfig cfg) : cfg_(std::move(cfg)) {
  if (cfg_.kind != "sgd" && cfg_.kind != "adamw") fail("unknown optimizer '", cfg_.kind, "' (valid: sgd adamw)");
}

Tensor& Optimizer::slot(Backend& backend, const std::string& param, const char* name, const Shape& shape) {
  const std::string key = param + "." + name;
  auto it = slots_.find(key);
  if (it == slots_.end()) it = slots_.emplace(key, backend.zeros(shape, DType::f32())).first;
  SAFNET_CHECK(it->second.shape() == shape, "optimizer slot ", key, " shape");
  // Slots restored from a checkpoint start on the host.
  if (!(it->second.device() == backend.device())) it->second = backend.to_device(it->second);
  return it->second;
}

void Optimizer::step(ParamStore& params, const std::map<std::string, const Tensor*>& grads, float lr,
                     Backend& backend) {
  ++steps_;
  for (ParamInfo& p : params.all()) {
    if (!p.trainable()) continue;
    auto it = grads.find(p.name);
    SAFNET_CHECK(it != grads.end(), "no gradient for ", p.name);
    if (cfg_.kind == "sgd") {
      backend.sgd_update(p.value, *it->second, slot(backend, p.name, "momentum", p.value.shape()), lr,
                         cfg_.momentum, cfg_.nesterov, cfg_.weight_decay);
    } else {
      backend.adamw_update(p.value, *it->second, slot(backend, p.name, "exp_avg", p.value.shape()),
                           slot(backend, p.name, "exp_avg_sq", p.value.shape()), lr, cfg_.beta1, cfg_.beta2,
                           cfg_.eps, cfg_.weight_decay, steps_);
    }
  }
}

}  // namespace safnet
