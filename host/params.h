// ParamStore: a model's named parameters and state tensors, with the role each plays.
// Graphs refer to parameters by name; executors bind them from a store, so several executors
// (training, evaluation, fault trials) can share one set of weights or each hold its own copy.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "host/tensor.h"

namespace safnet {

enum class ParamRole { weight, bias, bn_weight, bn_bias, bn_running_mean, bn_running_var };
enum class LayerKind { conv, linear, batchnorm };

const char* param_role_name(ParamRole r);
const char* layer_kind_name(LayerKind k);

struct ParamInfo {
  std::string name;
  Tensor value;
  ParamRole role;
  LayerKind layer;
  bool trainable() const { return role != ParamRole::bn_running_mean && role != ParamRole::bn_running_var; }
  // Weights of conv and linear layers are the ones read through the SAF.
  bool carries_saf() const { return role == ParamRole::weight; }
};

class ParamStore {
 public:
  Tensor& add(const std::string& name, Tensor value, ParamRole role, LayerKind layer);
  ParamInfo* find(const std::string& name);
  const ParamInfo* find(const std::string& name) const;
  ParamInfo& at(const std::string& name);
  const ParamInfo& at(const std::string& name) const;
  std::vector<ParamInfo>& all() { return params_; }
  const std::vector<ParamInfo>& all() const { return params_; }
  std::int64_t trainable_count() const;  // number of trainable scalars
  ParamStore clone() const;              // deep copy of every tensor

 private:
  std::vector<ParamInfo> params_;  // in creation order
  std::map<std::string, std::size_t> index_;
};

}  // namespace safnet
