// The blocked convolution kernels: output tiles of kTileRows channels by kPanelPixels pixels held
// in registers while a GEMM's terms are summed into them in order (AVX2: one tile at a time;
// AVX-512: two or three tiles at once). The forward convolution and, on AVX-512, the weight
// gradient run on them (host/cpu/conv2d.cpp).
#pragma once
#include <vector>

#include "host/cpu/ops.h"

namespace safnet::cpu {

// The blocked kernel: each output tile of kTileRows channels by kPanelPixels pixels lives in 12
// AVX registers while the C*R*S terms are summed into it in order, so each output is one fixed
// sequence of fused multiply-adds whatever the thread count.
inline constexpr int kTileRows = 6;

// Tiles of K channels, and the first channel of tile t.
int tile_count(int k);
int tile_start(int k, int t);

// A (K, n) matrix as tiles wp (tiles, n, kTileRows), rows past a tile's channels zero, so a term's
// values for every channel of a tile sit together: the weights (K, C*R*S), or dy (K, OH*OW).
void pack_tiles(int k, int n, const float* a, float* wp);
std::vector<float> pack_weights(int k, int crs, const float* w);

// AVX2: y rows [0, rows) (ldy apart), columns [0, cols) = tile wt (n, kTileRows) x panel (n, 16).
void run_tile(int rows, int n, const float* wt, const float* panel, float* y, long ldy, int cols);
// The same with the panel's term i read as two halves of 8 consecutive floats, lo + taps[i] and
// hi + taps[i] (halves_are_direct), without unfolding it: the same sums, bit for bit.
void run_tile_direct(int rows, int n, const float* wt, const float* lo, const float* hi, const int* taps, float* y,
                     long ldy, int cols);

// Where the AVX-512 kernel reads each term's 16 pixels: from the unfolded panel, or straight from
// the padded image when they are 16 consecutive floats there (stride 1, one output row), which
// saves unfolding. (Panels spanning two rows read as 8 + 8 by two masked loads ran slower than
// from the panel on 8x8 images.)
struct PanelSource {
  const float* base;  // the panel, or the padded image at the panel's (0, 0) tap
  const int* taps;    // (C*R*S) offset of each tap in the padded image; null: read the panel
};

// AVX-512: whether every tile of K channels runs in groups (at least two tiles, all of 5 or 6
// channels: K = 10-12, 15-18, 20 and above), and the size of the group starting at tile t.
bool groups_cover(int k);
int group_size(int k, int t);
// Tiles [t, t + tiles) over n terms read from src (the panel, or direct), into y rows ldy apart,
// columns [0, cols); with `accumulate` the sums continue from what y holds.
void run_group(bool direct, bool accumulate, int k, int t, int tiles, int n, const float* wt, const PanelSource& src,
               float* y, long ldy, int cols);
// Every channel of panel p0's pixels [p0, p0 + cols) of one image: reads the padded image xp
// directly where it can (taps: tap_offsets), else unfolds into `panel` (C*R*S, kPanelPixels).
// wp: the packed weights; yn (K, OH*OW).
void panel_by_groups(const ConvGeom& g, const float* wp, const float* xp, const int* taps, int p0, int cols,
                     float* panel, float* yn, long ldy);

}  // namespace safnet::cpu
