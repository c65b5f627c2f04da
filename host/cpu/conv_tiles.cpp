// The blocked convolution kernels (see conv_tiles.h).
#include "host/cpu/conv_tiles.h"

#include <algorithm>

#include <immintrin.h>

#include "host/cpu/cpu_features.h"
#include "host/cpu/im2col.h"

namespace safnet::cpu {

int tile_count(int k) { return (k + kTileRows - 1) / kTileRows; }

// First channel of tile t: rows spread evenly over the tiles (64 = 9 x 6 + 2 x 5, not 10 x 6 + 4),
// since a narrow last tile has too few accumulators to hide the multiply-add latency.
int tile_start(int k, int t) { return static_cast<int>(static_cast<long>(t) * k / tile_count(k)); }

void pack_tiles(int k, int n, const float* a, float* wp) {
  const int tiles = tile_count(k);
  std::fill(wp, wp + static_cast<std::size_t>(tiles) * n * kTileRows, 0.0f);
  for (int t = 0; t < tiles; ++t) {
    float* tile = wp + static_cast<std::size_t>(t) * n * kTileRows;  // (n, kTileRows)
    for (int m = tile_start(k, t); m < tile_start(k, t + 1); ++m)
      for (int i = 0; i < n; ++i) tile[static_cast<long>(i) * kTileRows + (m - tile_start(k, t))] = a[static_cast<long>(m) * n + i];
  }
}

std::vector<float> pack_weights(int k, int crs, const float* w) {
  std::vector<float> wp(static_cast<std::size_t>(tile_count(k)) * crs * kTileRows);  // (tiles, C*R*S, kTileRows)
  pack_tiles(k, crs, w, wp.data());
  return wp;
}

namespace {

// y rows [m0, m0 + Rows) (rows ldy apart), columns [0, cols) = the weight tile wt (C*R*S,
// kTileRows) times the panel (C*R*S, kPanelPixels): read from the unfolded panel, or (Direct)
// term i's two halves straight from the padded image at lo + taps[i] and hi + taps[i].
template <int Rows, bool Direct>
__attribute__((target("avx2,fma"))) void tile_kernel(int crs, const float* wt, const float* panel, const float* lo_src,
                                                      const float* hi_src, const int* taps, float* y, long ldy,
                                                      int cols) {
  // Every loop over m fully unrolled, or the accumulators live in memory.
  __m256 lo[Rows], hi[Rows];
#pragma GCC unroll 6
  for (int m = 0; m < Rows; ++m) lo[m] = hi[m] = _mm256_setzero_ps();
  for (int i = 0; i < crs; ++i, wt += kTileRows, panel += kPanelPixels) {
    const __m256 b0 = Direct ? _mm256_loadu_ps(lo_src + taps[i]) : _mm256_loadu_ps(panel);
    const __m256 b1 = Direct ? _mm256_loadu_ps(hi_src + taps[i]) : _mm256_loadu_ps(panel + 8);
#pragma GCC unroll 6
    for (int m = 0; m < Rows; ++m) {
      const __m256 a = _mm256_broadcast_ss(wt + m);
      lo[m] = _mm256_fmadd_ps(a, b0, lo[m]);
      hi[m] = _mm256_fmadd_ps(a, b1, hi[m]);
    }
  }
#pragma GCC unroll 6
  for (int m = 0; m < Rows; ++m) {
    float* out = y + m * ldy;
    if (cols == kPanelPixels) {
      _mm256_storeu_ps(out, lo[m]);
      _mm256_storeu_ps(out + 8, hi[m]);
    } else {
      alignas(32) float tmp[kPanelPixels];
      _mm256_store_ps(tmp, lo[m]);
      _mm256_store_ps(tmp + 8, hi[m]);
      for (int j = 0; j < cols; ++j) out[j] = tmp[j];
    }
  }
}

}  // namespace

namespace {

template <bool Direct>
void run_tile_rows(int rows, int crs, const float* wt, const float* panel, const float* lo, const float* hi,
                   const int* taps, float* y, long ldy, int cols) {
  switch (rows) {
    case 1: return tile_kernel<1, Direct>(crs, wt, panel, lo, hi, taps, y, ldy, cols);
    case 2: return tile_kernel<2, Direct>(crs, wt, panel, lo, hi, taps, y, ldy, cols);
    case 3: return tile_kernel<3, Direct>(crs, wt, panel, lo, hi, taps, y, ldy, cols);
    case 4: return tile_kernel<4, Direct>(crs, wt, panel, lo, hi, taps, y, ldy, cols);
    case 5: return tile_kernel<5, Direct>(crs, wt, panel, lo, hi, taps, y, ldy, cols);
    default: return tile_kernel<6, Direct>(crs, wt, panel, lo, hi, taps, y, ldy, cols);
  }
}

}  // namespace

void run_tile(int rows, int crs, const float* wt, const float* panel, float* y, long ldy, int cols) {
  run_tile_rows<false>(rows, crs, wt, panel, nullptr, nullptr, nullptr, y, ldy, cols);
}

void run_tile_direct(int rows, int crs, const float* wt, const float* lo, const float* hi, const int* taps, float* y,
                     long ldy, int cols) {
  run_tile_rows<true>(rows, crs, wt, nullptr, lo, hi, taps, y, ldy, cols);
}


namespace {

template <bool Direct>
__attribute__((target("avx512f"))) inline __m512 load_term(const PanelSource& src, int i) {
  if constexpr (Direct) return _mm512_loadu_ps(src.base + src.taps[i]);
  else return _mm512_loadu_ps(src.base + static_cast<long>(i) * kPanelPixels);
}

// Two or three adjacent tiles (R0 + R1 + R2 channels, rows ldy apart from y) at once with 16-lane
// vectors: one accumulator per channel holds the panel's 16 pixels, so 10 to 18 independent
// chains hide the multiply-add latency, and one load feeds them all. Each output is the same
// sequence of fused multiply-adds as in the AVX2 kernel, so the bits are the same.
// With Accumulate, the sums continue from what y holds (the weight gradient's next image).
template <int R0, int R1, int R2, bool Direct, bool Accumulate>
__attribute__((target("avx512f"))) void tile_group_kernel(int crs, const float* wt, long tile_stride,
                                                           const PanelSource& src, float* y, long ldy, int cols) {
  constexpr int kRows = R0 + R1 + R2;
  const float* wt1 = wt + tile_stride;
  const float* wt2 = wt + 2 * tile_stride;
  const __mmask16 keep = cols >= kPanelPixels ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << cols) - 1);
  __m512 acc[kRows];
#pragma GCC unroll 18
  for (int m = 0; m < kRows; ++m) acc[m] = Accumulate ? _mm512_maskz_loadu_ps(keep, y + m * ldy) : _mm512_setzero_ps();
  for (int i = 0; i < crs; ++i, wt += kTileRows, wt1 += kTileRows, wt2 += kTileRows) {
    const __m512 b = load_term<Direct>(src, i);
#pragma GCC unroll 6
    for (int m = 0; m < R0; ++m) acc[m] = _mm512_fmadd_ps(_mm512_set1_ps(wt[m]), b, acc[m]);
#pragma GCC unroll 6
    for (int m = 0; m < R1; ++m) acc[R0 + m] = _mm512_fmadd_ps(_mm512_set1_ps(wt1[m]), b, acc[R0 + m]);
#pragma GCC unroll 6
    for (int m = 0; m < R2; ++m) acc[R0 + R1 + m] = _mm512_fmadd_ps(_mm512_set1_ps(wt2[m]), b, acc[R0 + R1 + m]);
  }
#pragma GCC unroll 18
  for (int m = 0; m < kRows; ++m) _mm512_mask_storeu_ps(y + m * ldy, keep, acc[m]);
}

}  // namespace

// Whether the AVX-512 kernel runs every tile of K channels in groups of two or three: needs at
// least two tiles, all of 5 or 6 channels (K = 10-12, 15-18, 20 and above, but not 13, 14, 19).
bool groups_cover(int k) {
  if (!avx512_kernels_enabled() || tile_count(k) < 2) return false;
  for (int t = 0; t < tile_count(k); ++t) {
    const int rows = tile_start(k, t + 1) - tile_start(k, t);
    if (rows != 5 && rows != 6) return false;
  }
  return true;
}

// Tiles in the group starting at tile t: three, but two where four remain, so none is left alone.
int group_size(int k, int t) {
  const int left = tile_count(k) - t;
  return left == 4 || left == 2 ? 2 : 3;
}

namespace {

template <bool Direct, bool Accumulate>
void run_group_as(int k, int t, int n, int crs, const float* wt, const PanelSource& src, float* y, long ldy, int cols) {
  const long stride = static_cast<long>(crs) * kTileRows;
  int code = 0;  // tile heights in base 2: 5 -> 0, 6 -> 1
  for (int j = 0; j < n; ++j) code = code * 2 + (tile_start(k, t + j + 1) - tile_start(k, t + j) - 5);
  if (n == 2) code += 8;  // pairs after the triples
  switch (code) {
#define SAFNET_GROUP(c, a, b, d) \
  case c: return tile_group_kernel<a, b, d, Direct, Accumulate>(crs, wt, stride, src, y, ldy, cols);
    SAFNET_GROUP(0, 5, 5, 5) SAFNET_GROUP(1, 5, 5, 6) SAFNET_GROUP(2, 5, 6, 5) SAFNET_GROUP(3, 5, 6, 6)
    SAFNET_GROUP(4, 6, 5, 5) SAFNET_GROUP(5, 6, 5, 6) SAFNET_GROUP(6, 6, 6, 5) SAFNET_GROUP(7, 6, 6, 6)
    SAFNET_GROUP(8, 5, 5, 0) SAFNET_GROUP(9, 5, 6, 0) SAFNET_GROUP(10, 6, 5, 0) SAFNET_GROUP(11, 6, 6, 0)
#undef SAFNET_GROUP
  }
}

}  // namespace

void run_group(bool direct, bool accumulate, int k, int t, int tiles, int n, const float* wt, const PanelSource& src,
               float* y, long ldy, int cols) {
  if (!direct) return run_group_as<false, false>(k, t, tiles, n, wt, src, y, ldy, cols);
  if (accumulate) return run_group_as<true, true>(k, t, tiles, n, wt, src, y, ldy, cols);
  run_group_as<true, false>(k, t, tiles, n, wt, src, y, ldy, cols);
}

// Every channel of one panel's pixels [p0, p0 + cols) by the AVX-512 kernel, reading the padded
// image xp directly where it can and else unfolding into `panel`.
void panel_by_groups(const ConvGeom& g, const float* wp, const float* xp, const int* taps, int p0, int cols,
                     float* panel, float* yn, long ldy) {
  const int crs = g.c * g.r * g.s;
  int base = 0;
  const bool direct = taps != nullptr && panel_is_direct(g, p0, &base);
  if (!direct) im2col_panel(g, xp, p0, panel);
  const PanelSource src = direct ? PanelSource{xp + base, taps} : PanelSource{panel, nullptr};
  for (int t = 0, n; t < tile_count(g.k); t += n) {
    n = group_size(g.k, t);
    const float* wt = wp + static_cast<std::size_t>(t) * crs * kTileRows;
    float* yt = yn + static_cast<long>(tile_start(g.k, t)) * ldy + p0;
    run_group(direct, /*accumulate=*/false, g.k, t, n, crs, wt, src, yt, ldy, cols);
  }
}

}  // namespace safnet::cpu
