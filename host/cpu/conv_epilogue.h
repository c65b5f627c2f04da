// The epilogue conv2d_forward applies to its outputs while they are in cache (ops.h,
// ConvEpilogue): eval-mode batch norm, a residual add, ReLU; with AVX2 where the CPU has it.
#pragma once
#include "host/cpu/ops.h"

namespace safnet::cpu {

// Rows [0, k) of yn (rows ohw apart), columns [p0, p0 + cols), through the epilogue; `residual`
// is the image's (K, OH*OW) residual (null when the epilogue has none).
void apply_conv_epilogue(const ConvEpilogue& e, int k, long ohw, const float* residual, long p0, long cols, float* yn);

}  // namespace safnet::cpu
