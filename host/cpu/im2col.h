// im2col / col2im for one image: the unfolding that turns a convolution into a GEMM, whole or a
// panel of output pixels at a time.
#pragma once
#include <vector>

#include "host/cpu/ops.h"

namespace safnet::cpu {

// col (C*R*S, (y1 - y0) * OW), rows ld floats apart (ld >= (y1 - y0) * OW), from x (C, H, W) for
// output rows [y0, y1); padded taps read as 0. An ld wider than a row lets several images' columns
// sit side by side in one matrix.
void im2col(const ConvGeom& g, const float* x, int y0, int y1, float* col, long ld);
// The blocked forward kernel's unfolding: one panel of output pixels at a time, built from a
// zero-padded copy of the image so that every tap is a shifted read with no bounds checks. The
// panel stays in L1 while every output channel is computed from it, instead of a whole image's
// im2col round-tripping through L2 or memory.
inline constexpr int kPanelPixels = 16;
// Floats of pad_image's output: (C, H + 2 pad, W + 2 pad) and kPanelPixels of zero slack, which
// the vector loads of a stride-2 half panel may touch.
long padded_image_floats(const ConvGeom& g);
// xp (C, H + 2 pad, W + 2 pad) = x (C, H, W) with zero borders, plus the zero slack.
void pad_image(const ConvGeom& g, const float* x, float* xp);
// panel (C*R*S, kPanelPixels) for output pixels [p0, p0 + kPanelPixels) of one image, pixels past
// the last repeating it, from xp as pad_image wrote it. Needs avx2_kernels_enabled().
void im2col_panel(const ConvGeom& g, const float* xp, int p0, float* panel);
// Whether panel p0's 16 pixels are 16 consecutive floats of the padded image for every tap (stride
// 1, all in one output row): then the panel's row for tap offset o is xp[base + o, base + o + 16)
// and needs no unfolding. Sets base, the offset of the first pixel's (0, 0) tap.
bool panel_is_direct(const ConvGeom& g, int p0, int* base);
// Whether each half (8 pixels) of panel p0 is 8 consecutive floats of the padded image for every
// tap (stride 1, a whole panel, each half in one output row): sets the offsets of each half's first
// pixel's (0, 0) tap. Unlike panel_is_direct, the halves may lie in two rows (8-pixel-wide outputs).
bool halves_are_direct(const ConvGeom& g, int p0, int* lo_base, int* hi_base);
// The offset in the padded image of every tap (c, r, s), in panel row order; empty where the
// padded image is too large for int offsets.
std::vector<int> tap_offsets(const ConvGeom& g);

// x (C, H, W) = the sum of every col (C*R*S, OH*OW) entry into the pixel it was read from.
// Overwrites x; each pixel's terms are added in a fixed order.
void col2im(const ConvGeom& g, const float* col, float* x);

}  // namespace safnet::cpu
