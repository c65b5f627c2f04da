// Host/device copies shared by every backend.
#include "host/backend.h"

#include <cmath>
#include <cstring>

#include "host/cpu/ops.h"

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

void Backend::accumulate_metrics(const Tensor& logits, const Tensor& labels, const Tensor& loss, NanLogits rule,
                                 Tensor& sums) {
  const Tensor z = to_host(logits), y = to_host(labels), l = to_host(loss);
  Tensor s = to_host(sums);
  MetricSums m;
  std::memcpy(&m, s.raw(), sizeof m);
  const int n = static_cast<int>(z.dim(0)), k = static_cast<int>(z.dim(1));
  std::int64_t t1 = 0, t5 = 0;
  cpu::topk_correct(n, k, z.data<float>(), y.data<std::int32_t>(), &t1, &t5);
  m.top1 += t1;
  m.top5 += t5;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j)
      if (!std::isfinite(z.data<float>()[static_cast<std::int64_t>(i) * k + j])) {
        ++m.nonfinite_rows;
        break;
      }
  m.loss_sum += static_cast<double>(l.data<float>()[0]) * n;
  std::memcpy(s.raw(), &m, sizeof m);
  if (s.raw() != sums.device_raw()) copy(s, sums);
}

Tensor Backend::to_device(const Tensor& t) {
  if (t.device() == device()) return t;
  Tensor d = zeros(t.shape(), t.dtype());
  copy(t, d);
  return d;
}

}  // namespace safnet
