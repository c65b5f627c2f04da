// Shapes of the ops whose kernels exist on both sides (host/cpu and cuda/kernels): plain structs
// in namespace safnet, outside the per-build inline namespaces, so the CPU ops, the GPU build and
// the simulator build all name the same types.
#pragma once
#include "cuda/hd.h"

namespace safnet {

struct ConvGeom {
  int n, c, h, w;   // input (N, C, H, W)
  int k, r, s;      // weight (K, C, R, S)
  int stride, pad;  // same in both spatial dims
  SAFNET_HD int oh() const { return (h + 2 * pad - r) / stride + 1; }
  SAFNET_HD int ow() const { return (w + 2 * pad - s) / stride + 1; }
};

struct PoolGeom {
  int n, c, h, w;
  int k, stride, pad;  // square window; padding never wins the max
  SAFNET_HD int oh() const { return (h + 2 * pad - k) / stride + 1; }
  SAFNET_HD int ow() const { return (w + 2 * pad - k) / stride + 1; }
};

struct BnGeom {
  int n, c, hw;  // x viewed as (N, C, HW)
};

}  // namespace safnet
