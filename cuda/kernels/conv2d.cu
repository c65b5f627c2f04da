// Conv2d as three implicit GEMMs on the tiled SIMT GEMM (cuda/kernels/tiled_gemm.h) or on tensor
// cores (cuda/kernels/tc_gemm.h): the problem types below map GEMM coordinates to NCHW addresses;
// nothing is unfolded in memory.
#include "cuda/kernels/conv2d.h"

#include <algorithm>
#include <cstdint>

#include "cuda/access_trace.h"
#include "cuda/kernels/common.h"
#include "cuda/kernels/splitk_gemm.h"
#include "cuda/kernels/tc_gemm.h"
#include "cuda/kernels/tiled_gemm.h"
#include "cuda/kernels/weight_view.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

// A filter tap k = (ch, r, s) of a GEMM's K (ch: input channel in the forward, output channel in
// backward-data), stepped by carries: the cursors below walk K with no division per element.
struct FilterTap {
  int ch, r, s;
};

__device__ FilterTap filter_tap(const ConvGeom& g, int k) {
  const int rs = g.r * g.s;
  return {k / rs, k % rs / g.s, k % g.s};
}

__device__ void advance_tap(const ConvGeom& g, FilterTap& t, int step) {
  for (t.s += step; t.s >= g.s; t.s -= g.s)
    if (++t.r == g.r) t.r = 0, ++t.ch;
}

// The implicit im2col of x walked along k for one output column: the column's window is decomposed
// once, so the tensor-core GEMM's tile loads (cuda/kernels/tc_gemm.h) do no division per element.
struct Im2colCursor {
  std::int64_t image;  // offset of x[n, 0, 0, 0]
  int iy0, ix0;        // the window's top-left input pixel (negative in the padding)
  FilterTap tap;
  bool column;  // a column of the GEMM (ragged tiles have more)
};

__device__ Im2colCursor im2col_cursor(const ConvGeom& g, int crs, int col, int cols) {
  Im2colCursor q{};
  q.column = col < cols;
  if (!q.column) return q;
  const int ohw = g.oh() * g.ow(), rem = col % ohw;
  q.image = static_cast<std::int64_t>(col / ohw) * g.c * g.h * g.w;
  q.iy0 = rem / g.ow() * g.stride - g.pad;
  q.ix0 = rem % g.ow() * g.stride - g.pad;
  q.tap = filter_tap(g, crs);
  return q;
}

// The address of the cursor's element, null where it reads as zero (padding, past C, no column).
__device__ const float* im2col_src(const ConvGeom& g, const float* x, const Im2colCursor& q) {
  const int iy = q.iy0 + q.tap.r, ix = q.ix0 + q.tap.s;
  if (!q.column || q.tap.ch >= g.c || iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return nullptr;
  return x + q.image + (static_cast<std::int64_t>(q.tap.ch) * g.h + iy) * g.w + ix;
}

// An element offset in an NCHW tensor: a GEMM row's (a channel) or column's (a pixel of the batch)
// share of it, which the epilogues add (TableStore, cuda/kernels/gemm_operands.h).
struct NchwOffset {
  std::int64_t at;
};

// Forward: y[n, k, oy, ox] = sum over (c, r, s) of tau(w[k, c, r, s]) x[n, c, oy*st - pad + r, ox*st - pad + s].
// M = K, N = N*OH*OW, K = C*R*S. With kFused, each output goes through the epilogue as it is stored.
template <bool kFused>
struct ConvForward {
  static constexpr bool kAKFast = true;   // w rows are contiguous in (c, r, s)
  static constexpr bool kBKFast = false;  // x is contiguous along output columns
  // The plain forward (training's) fits 6 blocks of the SIMT GEMM per SM, 40 registers, without
  // spilling. The fused one (evaluation's, so every fault trial's where batch norm follows) spills
  // there; left to ptxas (0) it takes 48 registers, 5 blocks.
  static constexpr int kSimtMinBlocks = kFused ? 0 : 6;
  int M, N, K;
  ConvGeom g;
  const float* x;
  WeightView w;
  float* y;
  __device__ float a(int m, int k) const { return load_weight(w, static_cast<std::int64_t>(m) * K + k); }
  __device__ const void* a_words() const { return w.raw; }
  __device__ int a_word_bytes() const { return word_bytes(w.storage); }
  __device__ float a_decode(const void* words, int i) const { return saf_value(w.saf, decode_stored(words, w.storage, i)); }
  using BCursor = Im2colCursor;
  __device__ BCursor b_cursor(int k, int col) const { return im2col_cursor(g, k, col, N); }
  __device__ const float* b_src(const BCursor& q) const { return im2col_src(g, x, q); }
  __device__ void b_advance(BCursor& q, int step) const { advance_tap(g, q.tap, step); }
  ConvEpilogue e;
  // An output channel: its offset in an image of y and, fused, its batch norm, whose scale is
  // computed once per block (TableStore) rather than once per output.
  struct StoreRow {
    std::int64_t offset;
    float mean, scale, beta;
  };
  __device__ StoreRow store_row(int m) const {
    StoreRow r{static_cast<std::int64_t>(m) * g.oh() * g.ow(), 0.0f, 0.0f, 0.0f};
    if constexpr (kFused)
      if (m < M) {
        r.mean = e.mean[m];
        r.scale = e.gamma[m] * static_cast<float>(1.0 / sqrt(static_cast<double>(e.var[m]) + static_cast<double>(e.eps)));
        r.beta = e.beta[m];
      }
    return r;
  }
  using StoreColumn = NchwOffset;  // of y[n, 0, oy, ox]
  __device__ NchwOffset store_column(int col) const {
    const int ohw = g.oh() * g.ow();
    return {static_cast<std::int64_t>(col / ohw) * g.k * ohw + col % ohw};
  }
  __device__ void store(const StoreRow& r, const NchwOffset& column, float v) const {
    const std::int64_t i = column.at + r.offset;
    if constexpr (kFused) {
      v = (v - r.mean) * r.scale + r.beta;
      if (e.residual) v = e.residual_first ? e.residual[i] + v : v + e.residual[i];
      if (e.relu) v = v < 0.0f ? 0.0f : v;  // NaN stays, as in relu_forward
    }
    y[i] = v;
  }
};

// The gather of dy that backward-data multiplies, walked along k = (k, r, s) for one input pixel
// (n, iy, ix) as Im2colCursor walks x.
struct DyCursor {
  std::int64_t image;  // offset of dy[n, 0, 0, 0]
  int ty0, tx0;        // iy + pad, ix + pad: output pixel (ty0 - r, tx0 - s) / stride
  FilterTap tap;
  bool column;
};

__device__ DyCursor dy_cursor(const ConvGeom& g, int krs, int col, int cols) {
  DyCursor q{};
  q.column = col < cols;
  if (!q.column) return q;
  const int hw = g.h * g.w, rem = col % hw;
  q.image = static_cast<std::int64_t>(col / hw) * g.k * g.oh() * g.ow();
  q.ty0 = rem / g.w + g.pad;
  q.tx0 = rem % g.w + g.pad;
  q.tap = filter_tap(g, krs);
  return q;
}

// The address of the cursor's dy element, null where no output pixel reads this input pixel.
__device__ const float* dy_src(const ConvGeom& g, const float* dy, const DyCursor& q) {
  int oy = q.ty0 - q.tap.r, ox = q.tx0 - q.tap.s;
  if (!q.column || q.tap.ch >= g.k || oy < 0 || ox < 0) return nullptr;
  if (g.stride != 1) {  // strided: only every stride-th tap lands on an output pixel
    if (oy % g.stride != 0 || ox % g.stride != 0) return nullptr;
    oy /= g.stride, ox /= g.stride;
  }
  if (oy >= g.oh() || ox >= g.ow()) return nullptr;
  return dy + q.image + (static_cast<std::int64_t>(q.tap.ch) * g.oh() + oy) * g.ow() + ox;
}

// Backward data: dx[n, c, iy, ix] = sum over (k, r, s) of tau(w[k, c, r, s]) dy[n, k, oy, ox] where
// oy*st - pad + r = iy (and the same for x). M = C, N = N*H*W, K = K*R*S. A reads the filters across
// their rows, so `w` is a copy of the stored words transposed to (C, K, R, S) (transpose_filters):
// each row of A is K*R*S contiguous words, read, staged and decoded as the forward's are.
struct ConvBackwardData {
  static constexpr bool kAKFast = true;
  static constexpr bool kBKFast = false;
  int M, N, K;
  ConvGeom g;
  const float* dy;
  WeightView w;  // (C, K, R, S)
  float* dx;
  __device__ float a(int c, int krs) const { return load_weight(w, static_cast<std::int64_t>(c) * K + krs); }
  __device__ const void* a_words() const { return w.raw; }
  __device__ int a_word_bytes() const { return word_bytes(w.storage); }
  __device__ float a_decode(const void* words, int i) const { return saf_value(w.saf, decode_stored(words, w.storage, i)); }
  using BCursor = DyCursor;
  __device__ BCursor b_cursor(int krs, int col) const { return dy_cursor(g, krs, col, N); }
  __device__ const float* b_src(const BCursor& q) const { return dy_src(g, dy, q); }
  __device__ void b_advance(BCursor& q, int step) const { advance_tap(g, q.tap, step); }
  // dx's offsets, per input channel and per input pixel of the batch (TableStore).
  using StoreRow = NchwOffset;
  using StoreColumn = NchwOffset;
  __device__ NchwOffset store_row(int c) const { return {static_cast<std::int64_t>(c) * g.h * g.w}; }
  __device__ NchwOffset store_column(int col) const {
    const int hw = g.h * g.w;
    return {static_cast<std::int64_t>(col / hw) * g.c * hw + col % hw};
  }
  __device__ void store(const NchwOffset& row, const NchwOffset& column, float v) const {
    dx[column.at + row.at] = v;
  }
};

// wt (C, K, R*S) = w (K, C, R*S), stored words of any format moved as they are: one read and one
// write of the filters per pass, against a GEMM that reads them once per block column. The count
// is under 2^31 (check_geom), so unsigned indices neither overflow nor need 64-bit division.
template <typename Word>
__global__ void transpose_filters_kernel(const Word* w, Word* wt, unsigned k, unsigned c, unsigned rs) {
  const unsigned n = k * c * rs;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const unsigned filter = i / rs, tap = i % rs, kk = filter / c, cc = filter % c;
    wt[(cc * k + kk) * rs + tap] = w[i];
  }
}

void transpose_filters(const ConvGeom& g, const WeightView& w, void* wt, cudaStream_t s) {
  const std::int64_t n = static_cast<std::int64_t>(g.k) * g.c * g.r * g.s;
  const int threads = 256, blocks = static_cast<int>(std::min<std::int64_t>((n + threads - 1) / threads, 1024));
  switch (word_bytes(w.storage)) {
    case 4:
      SAFNET_LAUNCH(transpose_filters_kernel<std::uint32_t>, blocks, threads, 0, s,
                    static_cast<const std::uint32_t*>(w.raw), static_cast<std::uint32_t*>(wt), g.k, g.c, g.r * g.s);
      return;
    case 2:
      SAFNET_LAUNCH(transpose_filters_kernel<std::uint16_t>, blocks, threads, 0, s,
                    static_cast<const std::uint16_t*>(w.raw), static_cast<std::uint16_t*>(wt), g.k, g.c, g.r * g.s);
      return;
    default:
      SAFNET_LAUNCH(transpose_filters_kernel<std::uint8_t>, blocks, threads, 0, s,
                    static_cast<const std::uint8_t*>(w.raw), static_cast<std::uint8_t*>(wt), g.k, g.c, g.r * g.s);
  }
}

// The weight gradient's k: an output pixel of the batch. A thread decomposes its own once per K-tile
// (the tensor-core GEMM's operand tables, cuda/kernels/tc_gemm.h).
struct OutputPixel {
  int n, oy, ox;
};

// A column (c, r, s) of the weight gradient, decomposed once per block: offset of x[0, c, 0, 0]
// (-1: past the last column) and the filter tap.
struct Im2colColumn {
  int offset, r, s;
};

// Backward weight: dw[k, (c, r, s)] = sum over (n, oy, ox) of dy[n, k, oy, ox] x[n, c, iy, ix],
// times tau'(raw) in the epilogue. M = K, N = C*R*S, K = N*OH*OW.
struct ConvBackwardWeight {
  static constexpr bool kAKFast = true;  // dy is contiguous along (oy, ox)
  static constexpr bool kBKFast = true;
  static constexpr int kSimtMinBlocks = 5;  // 48 registers, no spill (ptxas alone took 64: 4 blocks)
  int M, N, K;
  ConvGeom g;
  const float* x;
  const float* dy;
  SafGrad e;
  float* dw;
  __device__ float a(int k, int j) const {
    const int ohw = g.oh() * g.ow();
    return traced_load(dy + (static_cast<std::int64_t>(j / ohw) * g.k + k) * ohw + j % ohw);
  }
  using ARow = OutputPixel;
  using BRow = OutputPixel;
  using BColumn = Im2colColumn;
  __device__ OutputPixel a_row(int j) const {
    const int ohw = g.oh() * g.ow(), rem = j % ohw;
    return {j / ohw, rem / g.ow(), rem % g.ow()};
  }
  __device__ const float* a_src(const OutputPixel& q, int k) const {
    return dy + ((static_cast<std::int64_t>(q.n) * g.k + k) * g.oh() + q.oy) * g.ow() + q.ox;
  }
  // A pixel's 4 neighbours along k are adjacent in dy while every image's pixels come in 4s.
  __device__ bool a_vectors() const {
    return g.oh() * g.ow() % 4 == 0 && reinterpret_cast<std::uintptr_t>(dy) % 16 == 0;
  }
  __device__ OutputPixel b_row(int j) const { return a_row(j); }
  __device__ Im2colColumn b_column(int crs) const {
    if (crs >= N) return {-1, 0, 0};
    const int rs = g.r * g.s;
    return {crs / rs * g.h * g.w, crs % rs / g.s, crs % g.s};
  }
  __device__ const float* b_src(const OutputPixel& q, const Im2colColumn& col) const {
    const int iy = q.oy * g.stride - g.pad + col.r, ix = q.ox * g.stride - g.pad + col.s;
    if (col.offset < 0 || iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return nullptr;
    return x + static_cast<std::int64_t>(q.n) * g.c * g.h * g.w + col.offset + iy * g.w + ix;
  }
  __device__ void store(int k, int crs, float v) const {
    const std::int64_t i = static_cast<std::int64_t>(k) * N + crs;
    dw[i] = apply_saf_grad(e, i, v);
  }
};

void check_geom(const ConvGeom& g, const char* op) {
  if (g.n < 1 || g.c < 1 || g.h < 1 || g.w < 1 || g.k < 1 || g.r < 1 || g.s < 1 || g.stride < 1 || g.pad < 0)
    arg_fail("cuda/kernels/conv2d.cu: ", op, ": bad geometry n=", g.n, " c=", g.c, " h=", g.h, " w=", g.w,
             " k=", g.k, " r=", g.r, " s=", g.s, " stride=", g.stride, " pad=", g.pad);
  if (g.h + 2 * g.pad < g.r || g.w + 2 * g.pad < g.s)
    arg_fail("cuda/kernels/conv2d.cu: ", op, ": kernel ", g.r, "x", g.s, " larger than the padded input ",
             g.h + 2 * g.pad, "x", g.w + 2 * g.pad);
  // GEMM coordinates are int: every extent must fit.
  const std::int64_t big = std::int64_t{1} << 31;
  const std::int64_t in = static_cast<std::int64_t>(g.n) * g.c * g.h * g.w;
  const std::int64_t out = static_cast<std::int64_t>(g.n) * g.k * g.oh() * g.ow();
  const std::int64_t wts = static_cast<std::int64_t>(g.k) * g.c * g.r * g.s;
  if (in >= big || out >= big || wts >= big)
    arg_fail("cuda/kernels/conv2d.cu: ", op, ": tensors of 2^31 or more elements are not supported");
}

}  // namespace

void conv2d_forward(const ConvGeom& g, const float* x, const WeightView& w, float* y, cudaStream_t s,
                    MathMode mode) {
  check_geom(g, "conv2d_forward");
  check_weight_storage(w.storage, "conv2d_forward");
  const ConvForward<false> p{g.k, g.n * g.oh() * g.ow(), g.c * g.r * g.s, g, x, w, y, {}};
  launch_gemm(p, mode, s);
}

void conv2d_forward_fused(const ConvGeom& g, const float* x, const WeightView& w, const ConvEpilogue& e, float* y,
                          cudaStream_t s, MathMode mode) {
  check_geom(g, "conv2d_forward_fused");
  check_weight_storage(w.storage, "conv2d_forward_fused");
  if (!e.gamma || !e.beta || !e.mean || !e.var) arg_fail("cuda/kernels/conv2d.cu: conv2d_forward_fused: no batch norm");
  const ConvForward<true> p{g.k, g.n * g.oh() * g.ow(), g.c * g.r * g.s, g, x, w, y, e};
  launch_gemm(p, mode, s);
}

std::size_t conv2d_backward_data_workspace_bytes(const ConvGeom& g, StorageFormat storage) {
  check_geom(g, "conv2d_backward_data_workspace_bytes");
  const std::size_t bytes = static_cast<std::size_t>(g.k) * g.c * g.r * g.s * word_bytes(storage);
  return (bytes + 15) / 16 * 16;
}

void conv2d_backward_data(const ConvGeom& g, const float* dy, const WeightView& w, float* dx, const Workspace& ws,
                          cudaStream_t s, MathMode mode) {
  check_geom(g, "conv2d_backward_data");
  check_weight_storage(w.storage, "conv2d_backward_data");
  check_workspace(ws, conv2d_backward_data_workspace_bytes(g, w.storage), "cuda/kernels/conv2d.cu: conv2d_backward_data");
  transpose_filters(g, w, ws.ptr, s);
  const WeightView wt{ws.ptr, w.storage, w.saf};
  launch_gemm(ConvBackwardData{g.c, g.n * g.h * g.w, g.k * g.r * g.s, g, dy, wt, dx}, mode, s);
}

void conv2d_backward_data(const ConvGeom& g, const float* dy, const WeightView& w, float* dx, cudaStream_t s,
                          MathMode mode) {
  const StreamWorkspace ws(conv2d_backward_data_workspace_bytes(g, w.storage), s);
  conv2d_backward_data(g, dy, w, dx, ws.get(), s, mode);
}

SplitKPlan conv2d_backward_weight_plan(const ConvGeom& g, MathMode mode) {
  check_geom(g, "conv2d_backward_weight_plan");
  return plan_splitk_gemm(g.k, std::int64_t{g.c} * g.r * g.s, std::int64_t{g.n} * g.oh() * g.ow(), mode);
}

void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, const SafGrad& e, float* dw,
                            const Workspace& ws, cudaStream_t s, MathMode mode) {
  const SplitKPlan plan = conv2d_backward_weight_plan(g, mode);
  check_workspace(ws, plan.workspace_bytes(), "cuda/kernels/conv2d.cu: conv2d_backward_weight");
  const ConvBackwardWeight p{g.k, g.c * g.r * g.s, g.n * g.oh() * g.ow(), g, x, dy, e, dw};
  launch_splitk_gemm(p, plan, ws, mode, s);
}

void conv2d_backward_weight(const ConvGeom& g, const float* x, const float* dy, const SafGrad& e, float* dw,
                            cudaStream_t s, MathMode mode) {
  const StreamWorkspace ws(conv2d_backward_weight_plan(g, mode).workspace_bytes(), s);
  conv2d_backward_weight(g, x, dy, e, dw, ws.get(), s, mode);
}

}  // namespace safnet::cuda
