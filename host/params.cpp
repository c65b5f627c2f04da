// ParamStore bookkeeping.
#include "host/params.h"

#include "host/check.h"

namespace safnet {

const char* param_role_name(ParamRole r) {
  switch (r) {
    case ParamRole::weight: return "weight";
    case ParamRole::bias: return "bias";
    case ParamRole::bn_weight: return "bn_weight";
    case ParamRole::bn_bias: return "bn_bias";
    case ParamRole::bn_running_mean: return "bn_running_mean";
    case ParamRole::bn_running_var: return "bn_running_var";
  }
  return "?";
}

const char* layer_kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::conv: return "conv";
    case LayerKind::linear: return "linear";
    case LayerKind::batchnorm: return "batchnorm";
  }
  return "?";
}

Tensor& ParamStore::add(const std::string& name, Tensor value, ParamRole role, LayerKind layer) {
  SAFNET_CHECK(!index_.count(name), "duplicate parameter ", name);
  index_[name] = params_.size();
  params_.push_back(ParamInfo{name, std::move(value), role, layer});
  return params_.back().value;
}

ParamInfo* ParamStore::find(const std::string& name) {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &params_[it->second];
}
const ParamInfo* ParamStore::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &params_[it->second];
}
ParamInfo& ParamStore::at(const std::string& name) {
  ParamInfo* p = find(name);
  if (!p) fail("no parameter named '", name, "'");
  return *p;
}
const ParamInfo& ParamStore::at(const std::string& name) const {
  const ParamInfo* p = find(name);
  if (!p) fail("no parameter named '", name, "'");
  return *p;
}

std::int64_t ParamStore::trainable_count() const {
  std::int64_t n = 0;
  for (const auto& p : params_)
    if (p.trainable()) n += p.value.numel();
  return n;
}

ParamStore ParamStore::clone() const {
  ParamStore s = *this;
  for (auto& p : s.params_) p.value = p.value.clone();
  return s;
}

}  // namespace safnet
