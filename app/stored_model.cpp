// Encoding a model's weights into a storage dtype.
#include "app/stored_model.h"

#include <cstring>

#include "host/check.h"
#include "host/faults/storage.h"

namespace safnet {

bool is_weight(const ParamInfo& p) { return p.role == ParamRole::weight; }

ParamStore store_params(const ParamStore& params, DType dtype, const std::function<bool(const ParamInfo&)>& stored) {
  if (!dtype.is_float_storage()) fail("dtype ", dtype.name(), " cannot hold weights (valid: f32 f16 bf16 fixedM.N)");
  ParamStore out;
  for (const ParamInfo& p : params.all()) {
    if (!stored(p)) {
      out.add(p.name, p.value, p.role, p.layer);
      continue;
    }
    const StorageBuffer buf = encode_storage(p.value.data<float>(), p.value.numel(), dtype);
    Tensor t(p.value.shape(), dtype);
    SAFNET_CHECK(t.nbytes() == buf.bytes.size(), "storage size of ", p.name);
    std::memcpy(t.raw(), buf.bytes.data(), buf.bytes.size());
    out.add(p.name, std::move(t), p.role, p.layer);
  }
  return out;
}

ParamStore params_on(Backend& backend, const ParamStore& params) {
  ParamStore out;
  for (const ParamInfo& p : params.all()) out.add(p.name, backend.to_device(p.value), p.role, p.layer);
  return out;
}

ParamStore params_to_host(Backend& backend, const ParamStore& params) {
  ParamStore out;
  for (const ParamInfo& p : params.all()) out.add(p.name, backend.to_host(p.value), p.role, p.layer);
  return out;
}

}  // namespace safnet
