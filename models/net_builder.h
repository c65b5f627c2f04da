// NetBuilder: the layer vocabulary models are written in. One walk over a model both builds its
// graph and (when given a ParamStore) creates and initialises its parameters, so the two can
// never disagree on names or shapes.
#pragma once
#include <string>

#include "host/graph.h"
#include "host/params.h"
#include "host/rng.h"

namespace safnet {

class NetBuilder {
 public:
  NetBuilder(Graph& g, bool train, ParamStore* init, std::uint64_t seed) : g_(g), train_(train), init_(init), rng_(seed) {}

  ValueId conv(ValueId x, int out_channels, int kernel, int stride, int pad, const Saf& saf, const std::string& name);
  ValueId linear(ValueId x, int out_features, bool bias, const Saf& saf, const std::string& name);
  ValueId batchnorm(ValueId x, const std::string& name);
  Graph& graph() { return g_; }

 private:
  ValueId param(const std::string& name, const Shape& shape, ParamRole role, LayerKind layer, double init_std,
                double init_uniform, float init_const);
  ValueId state(const std::string& name, const Shape& shape, ParamRole role, float init_const);

  Graph& g_;
  bool train_;
  ParamStore* init_;
  Rng rng_;
};

}  // namespace safnet
