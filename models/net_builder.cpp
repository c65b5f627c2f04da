// NetBuilder layers and their PyTorch-compatible initialisation.
#include "models/net_builder.h"

#include <cmath>

namespace safnet {

ValueId NetBuilder::param(const std::string& name, const Shape& shape, ParamRole role, LayerKind layer,
                          double init_std, double init_uniform, float init_const) {
  if (init_) {
    Tensor t(shape);
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      if (init_std > 0) p[i] = static_cast<float>(init_std * rng_.normal());
      else if (init_uniform > 0) p[i] = static_cast<float>((2.0 * rng_.uniform() - 1.0) * init_uniform);
      else p[i] = init_const;
    }
    init_->add(name, std::move(t), role, layer);
  }
  return g_.param(name, shape);
}

ValueId NetBuilder::state(const std::string& name, const Shape& shape, ParamRole role, float init_const) {
  if (init_) {
    Tensor t(shape);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = init_const;
    init_->add(name, std::move(t), role, LayerKind::batchnorm);
  }
  return g_.state(name, shape);
}

ValueId NetBuilder::conv(ValueId x, int out_channels, int kernel, int stride, int pad, const Saf& saf,
                         const std::string& name) {
  const std::int64_t c = g_.value(x).shape[1];
  const double fan_in = static_cast<double>(c) * kernel * kernel;
  // kaiming_normal_(fan_in, relu gain)
  const ValueId w = param(name + ".weight", {out_channels, c, kernel, kernel}, ParamRole::weight, LayerKind::conv,
                          std::sqrt(2.0 / fan_in), 0, 0);
  OpAttrs a;
  a.stride = stride;
  a.pad = pad;
  a.saf = saf;
  return g_.conv2d(x, w, a, name);
}

ValueId NetBuilder::linear(ValueId x, int out_features, bool bias, const Saf& saf, const std::string& name) {
  const std::int64_t in = g_.value(x).shape[1];
  const ValueId w = param(name + ".weight", {out_features, in}, ParamRole::weight, LayerKind::linear,
                          std::sqrt(2.0 / static_cast<double>(in)), 0, 0);
  const ValueId b = bias ? param(name + ".bias", {out_features}, ParamRole::bias, LayerKind::linear, 0,
                                 1.0 / std::sqrt(static_cast<double>(in)), 0)
                         : -1;
  OpAttrs a;
  a.saf = saf;
  return g_.linear(x, w, b, a, name);
}

ValueId NetBuilder::batchnorm(ValueId x, const std::string& name) {
  const std::int64_t c = g_.value(x).shape[1];
  const ValueId gamma = param(name + ".weight", {c}, ParamRole::bn_weight, LayerKind::batchnorm, 0, 0, 1.0f);
  const ValueId beta = param(name + ".bias", {c}, ParamRole::bn_bias, LayerKind::batchnorm, 0, 0, 0.0f);
  const ValueId mean = state(name + ".running_mean", {c}, ParamRole::bn_running_mean, 0.0f);
  const ValueId var = state(name + ".running_var", {c}, ParamRole::bn_running_var, 1.0f);
  return g_.batchnorm(x, gamma, beta, mean, var, train_, OpAttrs{}, name);
}

}  // namespace safnet
