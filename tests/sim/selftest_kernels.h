// Launchers for tests/sim/selftest_kernels.cu: small kernels that exercise each simulated feature.
// Pointers are device pointers; `block` is the threads per block (1..1024), n need not divide it.
#pragma once
#include "cuda/cuda_check.h"

namespace safnet::sim_selftest {

// out[i] = a * x[i] + y[i], grid-stride with `blocks` blocks.
void scale_add(const float* x, const float* y, float* out, float a, int n, int blocks, int block,
               cudaStream_t stream);
// *out = sum of x through per-block static-shared tree reductions; partial holds `blocks` floats.
void block_sum(const float* x, float* partial, float* out, int n, int blocks, int block,
               cudaStream_t stream);
// per_block[b] = sum of x over block b's grid-stride elements, reduced with warp shuffles.
void warp_sum(const float* x, float* per_block, int n, int blocks, int block, cudaStream_t stream);
// Reverses each block-sized segment of x through dynamic shared memory.
void segment_reverse(const float* x, float* out, int n, int block, cudaStream_t stream);
// bins[v] += count of v in values (values in [0, nbins), nbins <= 64); bins must start zeroed.
void histogram(const int* values, unsigned* bins, int n, int nbins, int blocks, int block,
               cudaStream_t stream);
// For each warp w of the launch: ballots[w], any[w], all[w] of pred[i] != 0, and per block
// counts[b] = __syncthreads_count over the block. Threads past n vote 0.
void votes(const int* pred, unsigned* ballots, int* any, int* all, int* counts, int n, int blocks,
           int block, cudaStream_t stream);
// Per warp of 32 consecutive elements (block a multiple of 32): scan[i] = inclusive prefix sum
// within the warp (shfl_up), total[i] = warp sum (shfl_xor), bcast[i] = element at lane 3 of i's
// group of `width` lanes (shfl with width).
void warp_shuffles(const int* x, int* scan, int* total, int* bcast, int width, int n, int block,
                   cudaStream_t stream);
// ids[linear thread id over grid and block, x fastest] = linear id, with 3-D grid and block.
void index_3d(int* ids, dim3 grid, dim3 block, cudaStream_t stream);

// Racy on purpose: each thread reads its neighbour's shared slot without a barrier. Race-free,
// out[i] would be x[i + 1] within the block (wrapping); racing, some read 0.
void racy_neighbour(const float* x, float* out, int n, int block, cudaStream_t stream);
// Broken on purpose: threads below `split` take an extra __syncthreads inside a branch.
void divergent_barrier(float* out, int n, int split, int block, cudaStream_t stream);
// Broken on purpose: threads past n return before a __syncthreads the others reach.
void early_exit_barrier(float* out, int n, int block, cudaStream_t stream);
// Broken on purpose: a full-mask __shfl_sync that only even lanes reach.
void divergent_shuffle(float* out, int n, int block, cudaStream_t stream);
// Broken on purpose: writes out[0 .. n + extra) with no bounds check.
void oob_write(float* out, int n, int extra, cudaStream_t stream);

}  // namespace safnet::sim_selftest
