// The weight view: dequantise stored raw weights and apply the SAF; and the SAF's gradient epilogue.
#include <cstdint>

#include "cuda/numeric.h"
#include "cuda/saf.h"
#include "host/check.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {

namespace {

template <typename Raw, typename Dequant>
void load(const Saf& saf, const Raw* raw, std::int64_t count, float* out, Dequant dequant) {
#pragma omp parallel for schedule(static) if (count > kParallelMin)
  for (std::int64_t i = 0; i < count; ++i) out[i] = saf_value(saf, dequant(raw[i]));
}

}  // namespace

void weight_view_load(const Saf& saf, DType storage, const void* raw, std::int64_t count, float* out) {
  if (count < 0) fail("host/cpu/weight_view.cpp: weight_view_load: negative count ", count);
  switch (storage.kind) {
    case DType::Kind::f32:
      load(saf, static_cast<const float*>(raw), count, out, [](float v) { return v; });
      return;
    case DType::Kind::f16:
      load(saf, static_cast<const std::uint16_t*>(raw), count, out, [](std::uint16_t v) { return f16_bits_to_f32(v); });
      return;
    case DType::Kind::bf16:
      load(saf, static_cast<const std::uint16_t*>(raw), count, out,
           [](std::uint16_t v) { return bf16_bits_to_f32(v); });
      return;
    case DType::Kind::fixed: {
      const int frac = storage.n;
      load(saf, static_cast<const std::int8_t*>(raw), count, out,
           [frac](std::int8_t v) { return fixed_to_f32(v, frac); });
      return;
    }
    case DType::Kind::u8:
    case DType::Kind::i32: break;
  }
  fail("host/cpu/weight_view.cpp: weight_view_load: ", storage.name(), " is not a weight storage dtype (f32, f16, bf16, fixedM.N)");
}

void weight_grad_epilogue(const Saf& saf, const float* raw, std::int64_t count, float* grad) {
  if (count < 0) fail("host/cpu/weight_view.cpp: weight_grad_epilogue: negative count ", count);
  if (saf.kind == SafKind::none && saf.nan == NanMode::propagate) return;  // tau' = 1
#pragma omp parallel for schedule(static) if (count > kParallelMin)
  for (std::int64_t i = 0; i < count; ++i) grad[i] *= saf_grad(saf, raw[i]);
}

}  // namespace safnet::cpu
