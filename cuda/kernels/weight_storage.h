// The weight view that reads raw weights as stored (cuda/stored_word.h): dequantise, then apply
// the SAF. Used by the weight-view, conv and linear kernels.
#pragma once
#include <cstdint>

#include "cuda/access_trace.h"
#include "cuda/hd.h"
#include "cuda/saf.h"
#include "cuda/stored_word.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// What conv2d and linear read as weights: tau(dequant(raw[i])).
struct WeightView {
  const void* raw = nullptr;  // device pointer, elements in `storage`
  StorageFormat storage;
  Saf saf;
};

SAFNET_HD float load_weight(const WeightView& w, std::int64_t i) {
  using K = StorageFormat::Kind;
  const unsigned bytes = w.storage.kind == K::f32 ? 4 : w.storage.kind == K::fixed ? 1 : 2;
  trace_global_load(static_cast<const unsigned char*>(w.raw) + i * bytes, bytes);
  return saf_value(w.saf, decode_stored(w.raw, w.storage, i));
}

// The raw-weight gradient's epilogue dL/dW = dL/dtau * tau'(raw): `raw` holds the f32 raw weights
// (training keeps them in f32); null means tau' = 1.
struct SafGrad {
  const float* raw = nullptr;  // device pointer, same layout as the gradient
  Saf saf;
};

SAFNET_HD float apply_saf_grad(const SafGrad& e, std::int64_t i, float grad) {
  if (e.raw == nullptr || (e.saf.kind == SafKind::none && e.saf.nan == NanMode::propagate)) return grad;
  return grad * saf_grad(e.saf, e.raw[i]);
}

}  // namespace safnet::cuda
