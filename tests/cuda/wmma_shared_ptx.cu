// Kernels whose PTX tests/tools/wmma_shared_ptx_test.py reads (compiled, never run): each loads one
// kind of fragment from shared memory, by CUDA's wmma::load_matrix_sync or by ours, and writes its
// four words to out[lane] in index order; each stores an accumulator whose eight words it read
// from g[lane] in index order. The test follows the registers from the load to the store.
#include <cuda_runtime.h>

#include "cuda/wmma.h"

namespace wmma = nvcuda::wmma;

namespace {

template <class Frag, class Src, bool kOurs>
__device__ void load_words(const Src* g, uint4* out) {
  __shared__ __align__(32) Src s[16 * 16];
  for (int i = threadIdx.x; i < 16 * 16; i += 32) s[i] = g[i];
  __syncthreads();
  Frag f;
  if constexpr (kOurs)
    safnet::load_shared_matrix_sync(f, s, 16);
  else
    wmma::load_matrix_sync(f, s, 16);
  const unsigned* w = reinterpret_cast<const unsigned*>(&f.x[0]);
  out[threadIdx.x] = make_uint4(w[0], w[1], w[2], w[3]);
}

template <int K, bool kOurs>
__device__ void store_words(const float4* g, float* out) {
  __shared__ __align__(32) float s[16 * 16];
  wmma::fragment<wmma::accumulator, 16, 16, K, float> f;
  const float4 lo = g[2 * threadIdx.x], hi = g[2 * threadIdx.x + 1];
  const float x[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
  for (int i = 0; i < 8; ++i) f.x[i] = x[i];
  if constexpr (kOurs)
    safnet::store_shared_matrix_sync(s, f, 16, wmma::mem_row_major);
  else
    wmma::store_matrix_sync(s, f, 16, wmma::mem_row_major);
  __syncthreads();
  for (int i = threadIdx.x; i < 16 * 16; i += 32) out[i] = s[i];
}

}  // namespace

// Entry names: wmma_<use>_<layout>_<type>_<cuda|ours>.
#define SAFNET_LOAD_ENTRIES(USE, LAYOUT, K, T, SRC, NAME)                                                  \
  extern "C" __global__ void wmma_##NAME##_cuda(const SRC* g, uint4* out) {                                \
    load_words<wmma::fragment<wmma::USE, 16, 16, K, T, wmma::LAYOUT>, SRC, false>(g, out);                 \
  }                                                                                                          \
  extern "C" __global__ void wmma_##NAME##_ours(const SRC* g, uint4* out) {                                \
    load_words<wmma::fragment<wmma::USE, 16, 16, K, T, wmma::LAYOUT>, SRC, true>(g, out);                  \
  }
SAFNET_LOAD_ENTRIES(matrix_a, row_major, 8, wmma::precision::tf32, float, a_row_tf32)
SAFNET_LOAD_ENTRIES(matrix_a, col_major, 8, wmma::precision::tf32, float, a_col_tf32)
SAFNET_LOAD_ENTRIES(matrix_b, row_major, 8, wmma::precision::tf32, float, b_row_tf32)
SAFNET_LOAD_ENTRIES(matrix_b, col_major, 8, wmma::precision::tf32, float, b_col_tf32)
SAFNET_LOAD_ENTRIES(matrix_a, row_major, 16, __nv_bfloat16, __nv_bfloat16, a_row_bf16)
SAFNET_LOAD_ENTRIES(matrix_a, col_major, 16, __nv_bfloat16, __nv_bfloat16, a_col_bf16)
SAFNET_LOAD_ENTRIES(matrix_b, row_major, 16, __nv_bfloat16, __nv_bfloat16, b_row_bf16)
SAFNET_LOAD_ENTRIES(matrix_b, col_major, 16, __nv_bfloat16, __nv_bfloat16, b_col_bf16)

extern "C" __global__ void wmma_d_k8_cuda(const float4* g, float* out) { store_words<8, false>(g, out); }
extern "C" __global__ void wmma_d_k8_ours(const float4* g, float* out) { store_words<8, true>(g, out); }
extern "C" __global__ void wmma_d_k16_cuda(const float4* g, float* out) { store_words<16, false>(g, out); }
extern "C" __global__ void wmma_d_k16_ours(const float4* g, float* out) { store_words<16, true>(g, out); }
