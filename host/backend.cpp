// Host/device copies shared by every backend.
#include "host/backend.h"

namespace safnet {

const char* nan_logits_name(NanLogits rule) { return rule == NanLogits::as_torch ? "torch" : "wrong"; }

NanLogits parse_nan_logits(const std::string& name) {
  if (name == "torch") return NanLogits::as_torch;
  if (name == "wrong") return NanLogits::wrong;
  fail("--nan-logits: unknown rule '", name, "' (valid: torch wrong)");
}

Tensor Backend::to_host(const Tensor& t) {
  if (t.device().is_cpu()) return t;
  Tensor h(t.shape(), t.dtype());
  copy(t, h);  // a copy to the host returns once the data is there
  return h;
}

const Tensor& Backend::stage(const Tensor& t, Tensor& slot) {
  if (t.device() == device()) return t;
  if (slot.shape() != t.shape() || slot.dtype() != t.dtype() || !(slot.device() == device())) slot = zeros(t.shape(), t.dtype());
  copy(t, slot);
  return slot;
}

Tensor Backend::to_device(const Tensor& t) {
  if (t.device() == device()) return t;
  Tensor d = zeros(t.shape(), t.dtype());
  copy(t, d);
  return d;
}

}  // namespace safnet
