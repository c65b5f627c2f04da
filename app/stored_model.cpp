// Stored weights: encoding into a storage dtype, binding, decoding after faults.
#include "app/stored_model.h"

#include <cstring>

#include "host/check.h"
#include "host/faults/storage.h"

namespace safnet {

bool is_weight(const ParamInfo& p) { return p.role == ParamRole::weight; }

std::vector<TargetSlice> target_slices(const ParamStore& params, const std::map<std::string, Saf>& safs,
                                       const std::function<bool(const ParamInfo&)>& selected) {
  std::vector<TargetSlice> out;
  std::int64_t at = 0;
  for (const ParamInfo& p : params.all()) {
    if (!selected(p)) continue;
    auto it = safs.find(p.name);
    const bool view = it != safs.end();
    out.push_back({p.name, at, p.value.numel(), view ? it->second : Saf{SafKind::none}, view});
    at += p.value.numel();
  }
  return out;
}

StoredModel::StoredModel(const ParamStore& params, std::vector<TargetSlice> slices, DType dtype, Backend& backend)
    : dtype_(dtype), backend_(backend), slices_(std::move(slices)) {
  if (!dtype.is_float_storage()) fail("dtype ", dtype.name(), " cannot hold weights (valid: f32 f16 bf16 fixedM.N)");
  words_ = slices_.empty() ? 0 : slices_.back().first_word + slices_.back().words;
  const std::size_t ws = dtype.size();
  clean_host_ = Tensor({words_ * static_cast<std::int64_t>(ws)}, DType::u8());
  for (const TargetSlice& sl : slices_) {
    const Tensor& v = params.at(sl.name).value;
    SAFNET_CHECK(v.numel() == sl.words && v.dtype() == DType::f32(), "stored target ", sl.name);
    const StorageBuffer buf = encode_storage(v.data<float>(), v.numel(), dtype);
    std::memcpy(clean_host_.data<std::uint8_t>() + static_cast<std::size_t>(sl.first_word) * ws, buf.bytes.data(),
                buf.bytes.size());
  }
  clean_ = backend.to_device(clean_host_);
  work_ = backend.zeros(clean_host_.shape(), DType::u8());
  std::size_t s = 0;
  for (const ParamInfo& p : params.all()) {
    if (s < slices_.size() && slices_[s].name == p.name) {
      Tensor stored = Tensor::view_of(work_, p.value.shape(), dtype, static_cast<std::size_t>(slices_[s].first_word) * ws);
      if (slices_[s].weight_view) {
        params_.add(p.name, stored, p.role, p.layer);
      } else {
        Tensor value = backend.zeros(p.value.shape(), DType::f32());
        params_.add(p.name, value, p.role, p.layer);
        decoded_.push_back({stored, value});
      }
      ++s;
    } else {
      params_.add(p.name, backend.to_device(p.value), p.role, p.layer);
    }
  }
  SAFNET_CHECK(s == slices_.size(), "fault targets out of parameter order");
  restore();
  refresh();
}

void StoredModel::restore() { backend_.copy(clean_, work_); }

void StoredModel::refresh() {
  for (Decoded& d : decoded_) backend_.dequantize(d.stored, d.value);
}

ParamStore store_params(const ParamStore& params, DType dtype, Backend& backend,
                        const std::function<bool(const ParamInfo&)>& stored) {
  std::map<std::string, Saf> views;
  for (const ParamInfo& p : params.all())
    if (is_weight(p)) views[p.name] = Saf{};
  return StoredModel(params, target_slices(params, views, stored), dtype, backend).params();
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
