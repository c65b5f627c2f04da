// Raw weights as stored (f32, f16, bf16, 8-bit fixed point) and the weight view that reads them:
// dequantise, then apply the SAF. Used by the weight-view, conv and linear kernels.
#pragma once
#include <cstdint>

#include "cuda/hd.h"
#include "cuda/numeric.h"
#include "cuda/saf.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// The weight storage formats of host/dtype.h's DType (f32, f16, bf16, fixed(m, n)); cuda/ does not
// include host/, so the backend converts a DType into this descriptor.
struct WeightStorage {
  enum class Kind : std::uint8_t { f32, f16, bf16, fixed };
  Kind kind = Kind::f32;
  int frac_bits = 0;  // fixed only: value = int8 / 2^frac_bits, 0..7
};

// What conv2d and linear read as weights: tau(dequant(raw[i])).
struct WeightView {
  const void* raw = nullptr;  // device pointer, elements in `storage`
  WeightStorage storage;
  Saf saf;
};

SAFNET_HD float dequant_weight(const void* raw, WeightStorage st, std::int64_t i) {
  switch (st.kind) {
    case WeightStorage::Kind::f32: return static_cast<const float*>(raw)[i];
    case WeightStorage::Kind::f16: return f16_bits_to_f32(static_cast<const std::uint16_t*>(raw)[i]);
    case WeightStorage::Kind::bf16: return bf16_bits_to_f32(static_cast<const std::uint16_t*>(raw)[i]);
    case WeightStorage::Kind::fixed: return fixed_to_f32(static_cast<const std::int8_t*>(raw)[i], st.frac_bits);
  }
  return 0.0f;
}

SAFNET_HD float load_weight(const WeightView& w, std::int64_t i) {
  return saf_value(w.saf, dequant_weight(w.raw, w.storage, i));
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
