// Kernels that exercise the CUDA simulator's features, compiled by nvcc and, with -x c++, by the
// host compiler against cuda/sim; used only by tests/sim.
#include "cuda/launch.h"
#include "tests/sim/selftest_kernels.h"

namespace safnet::sim_selftest {
namespace {

template <typename T>
__global__ void scale_add_kernel(const T* x, const T* y, T* out, T a, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    out[i] = a * x[i] + y[i];
}

// Tree reduction over any block size: the active half shrinks by ceil(len / 2) each step.
__global__ void block_sum_kernel(const float* x, float* partial, int n) {
  __shared__ float buf[1024];  // (blockDim.x)
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (unsigned len = blockDim.x; len > 1;) {
    const unsigned half = (len + 1) / 2;
    if (threadIdx.x + half < len) buf[threadIdx.x] += buf[threadIdx.x + half];
    __syncthreads();
    len = half;
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = buf[0];
}

// Sum across the lanes that exist in this thread's warp; lanes past the block's end do not exist.
__device__ float warp_reduce(float v) {
  const unsigned lane = threadIdx.x % 32;
  const unsigned lanes = min(32u, blockDim.x - (threadIdx.x - lane));
  const unsigned mask = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  for (unsigned off = 16; off > 0; off /= 2) {
    const float other = __shfl_down_sync(mask, v, off);
    if (lane + off < lanes) v += other;
  }
  return v;
}

__global__ void warp_sum_kernel(const float* x, float* per_block, int n) {
  __shared__ float warp_sums[32];  // (warps per block)
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v += x[i];
  v = warp_reduce(v);
  const unsigned warps = (blockDim.x + 31) / 32;
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float w = threadIdx.x < warps ? warp_sums[threadIdx.x] : 0.0f;
    // The first warp may be partial too when the block has fewer than 32 threads.
    w = warp_reduce(w);
    if (threadIdx.x == 0) per_block[blockIdx.x] = w;
  }
}

__global__ void segment_reverse_kernel(const float* x, float* out, int n) {
  SAFNET_DYNAMIC_SHARED(float, seg);  // (blockDim.x)
  const int start = blockIdx.x * blockDim.x;
  const int len = min(static_cast<int>(blockDim.x), n - start);
  const int t = threadIdx.x;
  if (t < len) seg[t] = x[start + t];
  __syncthreads();
  if (t < len) out[start + t] = seg[len - 1 - t];
}

__global__ void histogram_kernel(const int* values, unsigned* bins, int n, int nbins) {
  __shared__ unsigned local[64];  // (nbins)
  for (int b = threadIdx.x; b < nbins; b += blockDim.x) local[b] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    atomicAdd(&local[values[i]], 1u);
  __syncthreads();
  for (int b = threadIdx.x; b < nbins; b += blockDim.x)
    if (local[b] != 0) atomicAdd(&bins[b], local[b]);
}

__global__ void votes_kernel(const int* pred, unsigned* ballots, int* any, int* all, int* counts,
                             int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int p = i < n && pred[i] != 0;
  const unsigned lane = threadIdx.x % 32;
  const unsigned lanes = min(32u, blockDim.x - (threadIdx.x - lane));
  const unsigned mask = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  const unsigned b = __ballot_sync(mask, p);
  const int a = __any_sync(mask, p);
  const int l = __all_sync(mask, p);
  __syncwarp(mask);
  const int warp = (blockIdx.x * ((blockDim.x + 31) / 32)) + threadIdx.x / 32;
  if (lane == 0) {
    ballots[warp] = b;
    any[warp] = a;
    all[warp] = l;
  }
  const int c = __syncthreads_count(p);
  if (threadIdx.x == 0) counts[blockIdx.x] = c;
}

__global__ void warp_shuffles_kernel(const int* x, int* scan, int* total, int* bcast, int width,
                                     int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % 32;
  const int v = i < n ? x[i] : 0;
  int s = v;
  for (int off = 1; off < 32; off *= 2) {
    const int up = __shfl_up_sync(0xffffffffu, s, off);
    if (lane >= off) s += up;
  }
  int t = v;
  for (int m = 16; m > 0; m /= 2) t += __shfl_xor_sync(0xffffffffu, t, m);
  const int c = __shfl_sync(0xffffffffu, v, 3, width);
  if (i < n) {
    scan[i] = s;
    total[i] = t;
    bcast[i] = c;
  }
}

__global__ void index_3d_kernel(int* ids) {
  const int block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int id = block * (blockDim.x * blockDim.y * blockDim.z) + thread;
  ids[id] = id;
}

__global__ void racy_neighbour_kernel(const float* x, float* out, int n) {
  __shared__ float buf[1024];  // (blockDim.x)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  buf[threadIdx.x] = 0.0f;
  __syncthreads();
  buf[threadIdx.x] = i < n ? x[i] : 0.0f;
  // Missing __syncthreads(): the neighbour may not have stored its value yet.
  const float v = buf[(threadIdx.x + 1) % blockDim.x];
  if (i < n) out[i] = v;
}

__global__ void divergent_barrier_kernel(float* out, int n, int split) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (static_cast<int>(threadIdx.x) < split) {
    __syncthreads();
  }
  __syncthreads();
  if (i < n) out[i] = 1.0f;
}

__global__ void early_exit_barrier_kernel(float* out, int n) {
  __shared__ float buf[1024];  // (blockDim.x)
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  buf[threadIdx.x] = 1.0f;
  __syncthreads();
  out[i] = buf[threadIdx.x];
}

__global__ void divergent_shuffle_kernel(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = static_cast<float>(i);
  if (threadIdx.x % 2 == 0) v = __shfl_down_sync(0xffffffffu, v, 1);
  if (i < n) out[i] = v;
}

__global__ void oob_write_kernel(float* out, int limit) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < limit) out[i] = 2.0f;
}

int blocks_for(int n, int block) { return (n + block - 1) / block; }

}  // namespace

void scale_add(const float* x, const float* y, float* out, float a, int n, int blocks, int block,
               cudaStream_t stream) {
  SAFNET_LAUNCH(scale_add_kernel<float>, blocks, block, 0, stream, x, y, out, a, n);
}

void block_sum(const float* x, float* partial, float* out, int n, int blocks, int block,
               cudaStream_t stream) {
  SAFNET_LAUNCH(block_sum_kernel, blocks, block, 0, stream, x, partial, n);
  SAFNET_LAUNCH(block_sum_kernel, 1, block, 0, stream, partial, out, blocks);
}

void warp_sum(const float* x, float* per_block, int n, int blocks, int block, cudaStream_t stream) {
  SAFNET_LAUNCH(warp_sum_kernel, blocks, block, 0, stream, x, per_block, n);
}

void segment_reverse(const float* x, float* out, int n, int block, cudaStream_t stream) {
  SAFNET_LAUNCH(segment_reverse_kernel, blocks_for(n, block), block, block * sizeof(float), stream,
                x, out, n);
}

void histogram(const int* values, unsigned* bins, int n, int nbins, int blocks, int block,
               cudaStream_t stream) {
  SAFNET_LAUNCH(histogram_kernel, blocks, block, 0, stream, values, bins, n, nbins);
}

void votes(const int* pred, unsigned* ballots, int* any, int* all, int* counts, int n, int blocks,
           int block, cudaStream_t stream) {
  SAFNET_LAUNCH(votes_kernel, blocks, block, 0, stream, pred, ballots, any, all, counts, n);
}

void warp_shuffles(const int* x, int* scan, int* total, int* bcast, int width, int n, int block,
                   cudaStream_t stream) {
  SAFNET_LAUNCH(warp_shuffles_kernel, blocks_for(n, block), block, 0, stream, x, scan, total, bcast,
                width, n);
}

void index_3d(int* ids, dim3 grid, dim3 block, cudaStream_t stream) {
  SAFNET_LAUNCH(index_3d_kernel, grid, block, 0, stream, ids);
}

void racy_neighbour(const float* x, float* out, int n, int block, cudaStream_t stream) {
  SAFNET_LAUNCH(racy_neighbour_kernel, blocks_for(n, block), block, 0, stream, x, out, n);
}

void divergent_barrier(float* out, int n, int split, int block, cudaStream_t stream) {
  SAFNET_LAUNCH(divergent_barrier_kernel, blocks_for(n, block), block, 0, stream, out, n, split);
}

void early_exit_barrier(float* out, int n, int block, cudaStream_t stream) {
  SAFNET_LAUNCH(early_exit_barrier_kernel, blocks_for(n, block), block, 0, stream, out, n);
}

void divergent_shuffle(float* out, int n, int block, cudaStream_t stream) {
  SAFNET_LAUNCH(divergent_shuffle_kernel, blocks_for(n, block), block, 0, stream, out, n);
}

void oob_write(float* out, int n, int extra, cudaStream_t stream) {
  SAFNET_LAUNCH(oob_write_kernel, blocks_for(n + extra, 128), 128, 0, stream, out, n + extra);
}

}  // namespace safnet::sim_selftest
