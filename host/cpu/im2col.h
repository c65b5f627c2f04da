// im2col / col2im for one image: the unfolding that turns a convolution into one GEMM.
#pragma once
#include "host/cpu/ops.h"

namespace safnet::cpu {

// col (C*R*S, (y1 - y0) * OW) from x (C, H, W) for output rows [y0, y1); padded taps read as 0.
void im2col(const ConvGeom& g, const float* x, int y0, int y1, float* col);
// x (C, H, W) = the sum of every col (C*R*S, OH*OW) entry into the pixel it was read from.
// Overwrites x; each pixel's terms are added in a fixed order.
void col2im(const ConvGeom& g, const float* col, float* x);

}  // namespace safnet::cpu
