// The WMMA API and the bf16 type for kernels: CUDA's headers under nvcc, the simulator's
// implementation (cuda/sim/wmma.h) under the host compiler.
#pragma once
#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <mma.h>
#elif !defined(SAFNET_CUDA_REAL)
#include "cuda/sim/wmma.h"
#endif

#include "cuda/hd.h"

namespace safnet {

// wmma::load_matrix_sync and store_matrix_sync on shared memory. nvcc leaves the TF32 and BF16
// fragment loads (and the m16n16k8 accumulator store) generic, `wmma.load…tf32`, even from a
// __shared__ array, and ptxas lowers those to generic LD/ST; these issue the same instructions
// with `.shared`, which become LDS, LDSM and STS. Each register is the fragment's word of the same
// index, as CUDA's own builtins take them (`__mma_tf32_m16n16k8_ld_a((int*)&a, …)`);
// tests/tools/wmma_shared_ptx_test.py checks that on the PTX of both.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define SAFNET_WMMA_LOAD_SHARED(USE, AB, LAYOUT_T, LAYOUT, SHAPE, K, ELEM_T, PTX_T, SRC_T)                              \
  __device__ __forceinline__ void load_shared_matrix_sync(                                                           \
      nvcuda::wmma::fragment<nvcuda::wmma::USE, 16, 16, K, ELEM_T, nvcuda::wmma::LAYOUT_T>& f, const SRC_T* p,        \
      unsigned ldm) {                                                                                                 \
    static_assert(sizeof(f.x) == 16, "four 32-bit registers");                                                        \
    unsigned* r = reinterpret_cast<unsigned*>(&f.x[0]);                                                               \
    asm volatile("wmma.load." AB ".sync.aligned." LAYOUT "." SHAPE ".shared." PTX_T " {%0, %1, %2, %3}, [%4], %5;"    \
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])                                                     \
                 : "r"(static_cast<unsigned>(__cvta_generic_to_shared(p))), "r"(ldm));                               \
  }
#define SAFNET_WMMA_LOAD_SHARED_AB(LAYOUT_T, LAYOUT)                                                                  \
  SAFNET_WMMA_LOAD_SHARED(matrix_a, "a", LAYOUT_T, LAYOUT, "m16n16k8", 8, nvcuda::wmma::precision::tf32, "tf32", float) \
  SAFNET_WMMA_LOAD_SHARED(matrix_b, "b", LAYOUT_T, LAYOUT, "m16n16k8", 8, nvcuda::wmma::precision::tf32, "tf32", float) \
  SAFNET_WMMA_LOAD_SHARED(matrix_a, "a", LAYOUT_T, LAYOUT, "m16n16k16", 16, __nv_bfloat16, "bf16", __nv_bfloat16)     \
  SAFNET_WMMA_LOAD_SHARED(matrix_b, "b", LAYOUT_T, LAYOUT, "m16n16k16", 16, __nv_bfloat16, "bf16", __nv_bfloat16)
SAFNET_WMMA_LOAD_SHARED_AB(row_major, "row")
SAFNET_WMMA_LOAD_SHARED_AB(col_major, "col")
#undef SAFNET_WMMA_LOAD_SHARED_AB
#undef SAFNET_WMMA_LOAD_SHARED

// The FP32 accumulators of both shapes (eight registers), stored row-major.
template <int K>
__device__ __forceinline__ void store_shared_matrix_sync(float* p,
                                                         const nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, K, float>& f,
                                                         unsigned ldm, nvcuda::wmma::layout_t layout) {
  static_assert(K == 8 || K == 16, "the TF32 and BF16 shapes");
  if (layout != nvcuda::wmma::mem_row_major) return nvcuda::wmma::store_matrix_sync(p, f, ldm, layout);
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
#define SAFNET_WMMA_STORE_SHARED(SHAPE)                                                                               \
  asm volatile("wmma.store.d.sync.aligned.row." SHAPE ".shared.f32 [%0], {%1, %2, %3, %4, %5, %6, %7, %8}, %9;"      \
               :                                                                                                      \
               : "r"(a), "f"(f.x[0]), "f"(f.x[1]), "f"(f.x[2]), "f"(f.x[3]), "f"(f.x[4]), "f"(f.x[5]), "f"(f.x[6]),  \
                 "f"(f.x[7]), "r"(ldm)                                                                                \
               : "memory")
  if constexpr (K == 8)
    SAFNET_WMMA_STORE_SHARED("m16n16k8");
  else
    SAFNET_WMMA_STORE_SHARED("m16n16k16");
#undef SAFNET_WMMA_STORE_SHARED
}
#else
// The simulator's (and the host pass's) are the API's own.
template <class Frag, class T>
SAFNET_HD void load_shared_matrix_sync(Frag& f, const T* p, unsigned ldm) {
  nvcuda::wmma::load_matrix_sync(f, p, ldm);
}
template <class Frag>
SAFNET_HD void store_shared_matrix_sync(float* p, const Frag& f, unsigned ldm, nvcuda::wmma::layout_t layout) {
  nvcuda::wmma::store_matrix_sync(p, f, ldm, layout);
}
#endif

}  // namespace safnet
