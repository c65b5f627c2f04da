// Deterministic split-K on the tiled GEMM (cuda/kernels/tiled_gemm.h) or, in the tensor-core math
// modes, on cuda/kernels/tc_gemm.h, for the weight gradients,
// whose long reduction (over the batch and the output pixels) feeds few output tiles. The K range is
// cut into the partitions of a SplitKPlan (cuda/kernels/launch_geometry.h, from the shape alone);
// block (x, y, z) sums partition z of its tile in increasing k into a workspace (parts, M, N); a
// second launch adds each output's partitions in a fixed order and hands the sum to the problem's
// store, where the epilogue (tau') applies. No sum depends on the schedule, so neither do the bits.
#pragma once
#include <cstdint>

#include "cuda/hd.h"
#include "cuda/kernels/launch_geometry.h"
#include "cuda/kernels/tc_gemm.h"
#include "cuda/kernels/tiled_gemm.h"
#include "cuda/kernels/workspace.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// Problem P read as is (its operands' cursors and tables too), its partial sums stored into the
// workspace slice of the block's partition.
template <typename P>
struct SplitKPartials : P {
  float* ws;  // (parts, M, N)
  __device__ void store(int m, int n, float v) const {
    ws[(static_cast<std::int64_t>(blockIdx.z) * this->M + m) * this->N + n] = v;
  }
};

// Block (kSplitKReduceOutputs, lanes) covers consecutive outputs i (row-major over (M, N)): thread
// (x, y) adds partitions y, y + lanes, ... of output i in increasing order (a warp reads one
// partition's consecutive outputs), then thread (x, 0) adds the lanes' sums in increasing y.
template <typename P>
__global__ void __launch_bounds__(kSplitKReduceOutputs * kSplitKReduceLanes)
    splitk_reduce_kernel(P p, const float* ws, int parts) {
  __shared__ float lane_sums[kSplitKReduceLanes][kSplitKReduceOutputs];
  const int mn = p.M * p.N;  // < 2^31: the launchers check their tensors
  const int i = static_cast<int>(blockIdx.x * kSplitKReduceOutputs + threadIdx.x);
  const int lanes = static_cast<int>(blockDim.y);
  float v = 0.0f;
  if (i < mn)
    for (int z = static_cast<int>(threadIdx.y); z < parts; z += lanes) v += ws[static_cast<std::int64_t>(z) * mn + i];
  lane_sums[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.y == 0 && i < mn) {
    float sum = lane_sums[0][threadIdx.x];
    for (int y = 1; y < lanes; ++y) sum += lane_sums[y][threadIdx.x];
    p.store(i / p.N, i % p.N, sum);
  }
}

// A tensor-core partition gets at least this many 16-deep K steps. The two waves plan_splitk aims
// at are counted from threads alone (16 blocks of 128 per SM), while registers and shared memory
// let 5 to 11 reside (tools/occupancy.py): without a floor, a 16-row weight gradient such as
// ResNet-20's first layer would be cut into 8192 partitions of one step, about 9 real waves of
// blocks that each stage, multiply and store a whole tile for a single step.
inline constexpr int kTcMinSplitKSteps = 4;

// The split of an M x N x K GEMM in math mode `mode`: the tile of that mode's kernel decides the
// blocks per partition, so the partitions (and the workspace) depend on the mode.
inline SplitKPlan plan_splitk_gemm(std::int64_t m, std::int64_t n, std::int64_t k, MathMode mode) {
  const GemmBlockTile t = gemm_block_tile(m, mode);
  return plan_splitk(m, n, k, t.bm, t.bn, t.bk, t.threads, mode == MathMode::fp32 ? 1 : kTcMinSplitKSteps);
}

#if defined(__CUDACC__) || !defined(SAFNET_CUDA_REAL)

// Runs problem p in math mode `mode` as `plan` (from plan_splitk_gemm, same mode) says: one launch
// when plan.parts == 1, else the partial sums into `ws` (plan.workspace_bytes(), checked by the
// caller) and the reduction.
template <typename P>
void launch_splitk_gemm(const P& p, const SplitKPlan& plan, const Workspace& ws, MathMode mode, cudaStream_t s) {
  using T = DefaultTile;
  if (p.M <= 0 || p.N <= 0) return;
  if (plan.parts == 1) {
    launch_gemm(p, mode, s);
    return;
  }
  auto* partials = static_cast<float*>(ws.ptr);
  const SplitKPartials<P> q{p, partials};
  if (mode == MathMode::fp32) {
    const dim3 grid((p.N + T::BN - 1) / T::BN, (p.M + T::BM - 1) / T::BM, plan.parts);
    SAFNET_LAUNCH((tiled_gemm_kernel<T::BM, T::BN, T::BK, T::TM, T::TN, SplitKPartials<P>>), grid, T::kThreads, 0,
                  s, q, plan.k_per_part);
  } else {
    launch_tc_gemm(q, mode, plan.parts, plan.k_per_part, s);
  }
  const dim3 block(kSplitKReduceOutputs, plan.reduce_lanes);
  SAFNET_LAUNCH((splitk_reduce_kernel<P>), static_cast<unsigned>(plan.reduce_blocks()), block, 0, s, p, partials,
                plan.parts);
}

#endif

}  // namespace safnet::cuda
