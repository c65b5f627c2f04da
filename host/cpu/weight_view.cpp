// The weight view: dequantise stored raw weights and apply the SAF; and the SAF's gradient epilogue.
#include <cstdint>

#include "cuda/saf.h"
#include "cuda/stored_word.h"
#include "host/check.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"
#include "host/dtype.h"

namespace safnet::cpu {

namespace {

template <StorageFormat::Kind K>
void load(const Saf& saf, const void* raw, int frac_bits, std::int64_t count, float* out) {
#pragma omp parallel for schedule(static) if (count > kParallelMin)
  for (std::int64_t i = 0; i < count; ++i) out[i] = saf_value(saf, decode_stored<K>(raw, frac_bits, i));
}

}  // namespace

void weight_view_load(const Saf& saf, DType storage, const void* raw, std::int64_t count, float* out) {
  if (count < 0) fail("host/cpu/weight_view.cpp: weight_view_load: negative count ", count);
  if (!storage.is_float_storage())
    fail("host/cpu/weight_view.cpp: weight_view_load: ", storage.name(),
         " is not a weight storage dtype (f32, f16, bf16, fixedM.N)");
  const StorageFormat fmt = storage_format(storage);
  with_storage_kind(fmt.kind, [&](auto kind) { load<decltype(kind)::value>(saf, raw, fmt.frac_bits, count, out); });
}

void weight_grad_epilogue(const Saf& saf, const float* raw, std::int64_t count, float* grad) {
  if (count < 0) fail("host/cpu/weight_view.cpp: weight_grad_epilogue: negative count ", count);
  if (saf.kind == SafKind::none && saf.nan == NanMode::propagate) return;  // tau' = 1
#pragma omp parallel for schedule(static) if (count > kParallelMin)
  for (std::int64_t i = 0; i < count; ++i) grad[i] *= saf_grad(saf, raw[i]);
}

}  // namespace safnet::cpu
