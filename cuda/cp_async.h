// Asynchronous global -> shared copies (PTX cp.async, sm_80+) for kernels: inline PTX under nvcc, a
// plain synchronous copy below sm_80, and the simulator's implementation (cuda/sim/cp_async.h)
// under the host compiler.
//
//   cp_async<Bytes>(smem_dst, gmem_src, pred)  queues a copy of Bytes (4, 8 or 16) into the thread's
//                                              open group; pred false writes zeros, reads nothing
//   cp_async_commit()                          closes the open group (an empty one is a group too)
//   cp_async_wait<N>()                         waits until at most the N newest committed groups are
//                                              pending; copies not yet committed are not waited for
//   cp_async_wait_all()                        commit, then wait<0>
//
// Groups belong to the issuing thread, and a completed copy is visible to that thread only: a
// thread reading data another thread copied needs the copier's wait, then a barrier. A barrier alone
// completes nothing. Both addresses must be aligned to Bytes (PTX "Addresses as Operands").
//
// The simulator keeps these rules strictly, so a kernel that breaks one fails there instead of
// working by luck of timing on a GPU:
// - a copy poisons its destination (0xff bytes, NaN as floats) at issue and writes it only when a
//   wait completes its group, so reading before the wait, or without the barrier after a
//   neighbour's wait, reads garbage; refilling a buffer another thread still reads (a missing
//   barrier before the refill) poisons what that thread reads;
// - Bytes not 4, 8 or 16 does not compile; misaligned addresses, a source outside a live device
//   allocation (unless pred is false), a destination that is not shared memory and a copy into
//   bytes another pending copy of the thread writes (unordered: PTX leaves the result undefined)
//   stop the kernel naming the kernel, block, thread and call site;
// - a thread that ends with copies not waited for (committed or not) stops the kernel: on the GPU
//   they land after the block stopped looking, or race with the next use of the buffer.
#pragma once
#if defined(__CUDACC__)
#include <type_traits>

namespace safnet {

template <int Bytes>
__device__ __forceinline__ void cp_async(void* smem_dst, const void* gmem_src, bool pred) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  const int src_size = pred ? Bytes : 0;  // bytes read; the rest of the destination is zero-filled
  if constexpr (Bytes == 16)  // .cg: through L2 only, the streaming form; it exists for 16 bytes only
    asm volatile("cp.async.cg.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(gmem_src),
                 "n"(Bytes), "r"(src_size)
                 : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(gmem_src),
                 "n"(Bytes), "r"(src_size)
                 : "memory");
#else
  // Before sm_80 there is no cp.async: copy now, so the waits have nothing left to do.
  using Word = std::conditional_t<Bytes == 16, int4, std::conditional_t<Bytes == 8, int2, int>>;
  *static_cast<Word*>(smem_dst) = pred ? *static_cast<const Word*>(gmem_src) : Word{};
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
  static_assert(N >= 0, "cp.async.wait_group takes a count of groups left pending");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

__device__ __forceinline__ void cp_async_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

}  // namespace safnet

#elif !defined(SAFNET_CUDA_REAL)
#include "cuda/sim/cp_async.h"
#endif
