// The small CNN the simulator's traffic tests run: 3x8x8 inputs, 10 classes, tanh weights.
#pragma once
#include "models/model.h"

namespace safnet::test {

inline ModelConfig small_cnn_config() {
  ModelConfig m;
  m.arch = "cnn";
  m.in_channels = 3;
  m.height = m.width = 8;
  m.classes = 10;
  m.saf.kind = SafKind::tanh;
  return m;
}

}  // namespace safnet::test
