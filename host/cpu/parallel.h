// Threading policy of the CPU kernels: OpenMP across images, OpenBLAS on the calling thread.
#pragma once
#include <cstddef>

namespace safnet::cpu {

// Images per partial sum in batch reductions (conv weight gradients). Fixed, not derived from the
// thread count, so the summation order and every bit of the result are the same on any machine.
inline constexpr int kReduceChunk = 4;

// Rows per block when a GEMM is split across threads (linear layers). Fixed for the same reason.
inline constexpr int kRowBlock = 32;

// Element-wise loops below this size stay on one thread: spawning costs more than it saves.
inline constexpr long kParallelMin = 1 << 15;

// Makes every OpenBLAS call run on the thread that calls it. The kernels call sgemm from inside
// OpenMP regions, one small GEMM per image; the pthread OpenBLAS would otherwise start its own
// threads inside each OpenMP thread and oversubscribe the cores. The alternative, per-image GEMMs
// outside parallel regions threaded by OpenBLAS, was slower on ResNet-20's 16->16 32x32 conv with
// 2 cores (forward, batch 128: 17.0-17.5 ms vs 18.1-19.5 ms): the GEMMs are too small (M = 16)
// for OpenBLAS's threading to pay off, and im2col then runs on one thread.
void blas_use_calling_thread();

// A buffer of at least `count` floats owned by the calling thread and reused across calls;
// `slot` selects one of a few independent buffers so two can be live at once. The contents are
// unspecified. The pointer stays valid until the same thread asks for the same slot again.
float* thread_scratch(std::size_t count, int slot = 0);

}  // namespace safnet::cpu
