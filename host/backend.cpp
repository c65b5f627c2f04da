// Host/device copies shared by every backend.
#include "host/backend.h"

namespace safnet {

Tensor Backend::to_host(const Tensor& t) {
  if (t.device().is_cpu()) return t;
  Tensor h(t.shape(), t.dtype());
  copy(t, h);
  synchronize();
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
