// Launch geometry of the split-K weight gradients and the multi-block batch norm: how many
// partitions a reduction is cut into (from the shape alone, never from timing, so a result is the
// same bits run to run), the blocks that launches, how many waves those fill on the card the rules
// are sized for, and the workspace the partial sums need. Host code only: the launchers plan with
// it, and tests/sim/launch_geometry_test.cpp prints the table of docs/BENCHMARKS.md from it.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cuda/hd.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// The card the rules are sized for: 132 SMs (H100 SXM, H200), at most 2048 resident threads and 32
// resident blocks per SM (sm_80 to sm_90). A wave is the blocks resident at once, counted from these
// limits alone: that is the most registers and shared memory could ever allow, so a launch counted
// as two waves fills at least two on the card whatever ptxas allots.
inline constexpr int kSms = 132;
inline constexpr int kThreadsPerSm = 2048;
inline constexpr int kBlocksPerSm = 32;
// Reductions are split until a launch fills this many waves where the shape allows: with two or
// more, the SMs left idle while the last wave drains are at most about half of one wave's time.
inline constexpr int kTargetWaves = 2;

constexpr std::int64_t wave_blocks(int threads_per_block) {
  return std::int64_t{kSms} * std::min(kBlocksPerSm, kThreadsPerSm / threads_per_block);
}
constexpr double waves(std::int64_t blocks, int threads_per_block) {
  return static_cast<double>(blocks) / static_cast<double>(wave_blocks(threads_per_block));
}
constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// ---- split-K GEMM (cuda/kernels/splitk_gemm.h) ----------------------------------------------

// The split-K workspace is held to 64 MiB (16 Mi floats); a GEMM that would need more splits less.
inline constexpr std::int64_t kMaxSplitKWorkspaceFloats = std::int64_t{1} << 24;
// Outputs per block of the second launch (one per x thread) and most partitions summed side by
// side per output (y threads; each adds its own partitions in increasing order).
inline constexpr int kSplitKReduceOutputs = 32;
inline constexpr int kSplitKReduceLanes = 8;

// C (M, N) = sum over K in tiles of BM x BN, `threads` threads per tile block, stepping K by BK:
// the K range cut into `parts` runs of `k_per_part` values (a multiple of BK; the last run may be
// shorter, none is empty). parts == 1 is the plain GEMM: one launch, no workspace.
struct SplitKPlan {
  std::int64_t m = 0, n = 0, k = 0;
  int threads = 0;         // per tile block
  std::int64_t tiles = 0;  // ceil(M / BM) ceil(N / BN)
  int parts = 1;
  int k_per_part = 0;
  int reduce_lanes = 1;  // y threads per block of the second launch

  std::int64_t blocks() const { return tiles * parts; }
  std::int64_t reduce_blocks() const { return parts > 1 ? ceil_div(m * n, kSplitKReduceOutputs) : 0; }
  std::size_t workspace_bytes() const {
    return parts > 1 ? static_cast<std::size_t>(parts * m * n) * sizeof(float) : 0;
  }
};

// Enough partitions for kTargetWaves waves of tile blocks, each partition at least one BK step
// (rounded so that none is empty: parts = ceil(steps / steps_per_part)), and no more than the
// workspace cap allows.
// min_steps: the fewest BK steps a partition gets when K has them (a block's fixed costs, its
// prologue and its partial-sum tile, are then spread over at least that many steps).
inline SplitKPlan plan_splitk(std::int64_t m, std::int64_t n, std::int64_t k, int bm, int bn, int bk, int threads,
                              std::int64_t min_steps = 1) {
  SplitKPlan p;
  p.m = m, p.n = n, p.k = k, p.threads = threads;
  p.tiles = ceil_div(m, bm) * ceil_div(n, bn);
  const std::int64_t steps = std::max<std::int64_t>(1, ceil_div(k, bk));
  // At most the workspace cap, and 65535 partitions (grid.z).
  const std::int64_t cap = std::clamp<std::int64_t>(kMaxSplitKWorkspaceFloats / (m * n), 1, 65535);
  const std::int64_t want = std::min({ceil_div(kTargetWaves * wave_blocks(threads), p.tiles), cap, steps});
  // Steps per partition rounded down, so parts comes out at least `want`; rounded up instead where
  // that would pass the cap.
  std::int64_t per = std::max<std::int64_t>(std::min(min_steps, steps), steps / want);
  if (ceil_div(steps, per) > cap) per = ceil_div(steps, want);
  p.parts = static_cast<int>(ceil_div(steps, per));
  p.k_per_part = static_cast<int>(per * bk);
  p.reduce_lanes = std::min(p.parts, kSplitKReduceLanes);
  return p;
}

// ---- batch norm (cuda/kernels/batchnorm.cu) ---------------------------------------------------

inline constexpr int kBnThreads = 256;
// A block of the statistics and backward sums gets at least 4 values per thread, so that a
// thread's loads overlap and the block trees stay a small part of a block's work. (At 1 value per
// thread ResNet-20's batch norms would reach 2 waves too, but the threads to simulate, and so the
// simulator's time for a training step, would grow by about 2.5 times.)
inline constexpr int kBnMinValuesPerThread = 4;

// Each channel's N*HW values cut into `parts` runs of `per_part` consecutive values (i = n HW + hw;
// the last run may be shorter, none is empty), one block of kBnThreads each: C * parts blocks.
struct BnPlan {
  int c = 0;
  std::int64_t count = 0;  // N * HW
  int parts = 1;
  int per_part = 0;

  std::int64_t blocks() const { return std::int64_t{c} * parts; }
  // Partial sums, two doubles per (channel, partition).
  std::size_t workspace_bytes() const { return 2 * static_cast<std::size_t>(blocks()) * sizeof(double); }
};

inline BnPlan plan_batchnorm(int n, int c, int hw) {
  BnPlan p;
  p.c = c;
  p.count = std::int64_t{n} * hw;
  const std::int64_t most = std::max<std::int64_t>(1, p.count / (kBnThreads * kBnMinValuesPerThread));
  const std::int64_t want = std::min(ceil_div(kTargetWaves * wave_blocks(kBnThreads), c), most);
  const std::int64_t per = ceil_div(p.count, want);
  p.parts = static_cast<int>(ceil_div(p.count, per));
  p.per_part = static_cast<int>(per);
  return p;
}

// Evaluation: block (x, c, n) normalises values x * threads ... of plane (n, c); threads is HW
// rounded up to a warp, at most 256; n runs over min(N, 65535) blocks, striding beyond.
struct BnEvalGrid {
  int threads = 0;
  std::int64_t x = 0, y = 0, z = 0;
  std::int64_t blocks() const { return x * y * z; }
};

inline BnEvalGrid plan_batchnorm_eval(int n, int c, int hw) {
  BnEvalGrid gr;
  gr.threads = static_cast<int>(std::min<std::int64_t>(256, ceil_div(hw, 32) * 32));
  gr.x = ceil_div(hw, gr.threads);
  gr.y = c;
  gr.z = std::min(n, 65535);
  return gr;
}

}  // namespace safnet::cuda
