// The geometry of a conv2d, pooling or batch-norm node from its attributes and operand shapes,
// for every backend.
#pragma once
#include <cstdint>

#include "cuda/geometry.h"
#include "host/graph.h"
#include "host/tensor.h"

namespace safnet {

// x (N, C, H, W), w (K, C, R, S).
inline ConvGeom conv_geom(const Node& n, const Shape& x, const Shape& w) {
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  return ConvGeom{i(x[0]), i(x[1]), i(x[2]), i(x[3]), i(w[0]), i(w[2]), i(w[3]), n.attrs.stride, n.attrs.pad};
}

// x (N, C, H, W).
inline PoolGeom pool_geom(const Node& n, const Shape& x) {
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  return PoolGeom{i(x[0]), i(x[1]), i(x[2]), i(x[3]), n.attrs.kernel, n.attrs.stride, n.attrs.pad};
}

// x (N, C, ...) viewed as (N, C, HW).
inline BnGeom bn_geom(const Shape& x) {
  const auto i = [](std::int64_t v) { return static_cast<int>(v); };
  return BnGeom{i(x[0]), i(x[1]), i(shape_numel(x) / (x[0] * x[1]))};
}

}  // namespace safnet
