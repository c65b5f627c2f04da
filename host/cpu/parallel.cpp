// Threading policy of the CPU kernels: the OpenBLAS thread setting and per-thread scratch buffers.
#include "host/cpu/parallel.h"

#ifdef SAFNET_HAVE_BLAS
#include <cblas.h>
#endif

#include <memory>
#include <mutex>

#include "host/check.h"
#include "host/cpu/blas_kernels.h"

namespace safnet::cpu {

void blas_use_calling_thread() {
  static std::once_flag once;
  std::call_once(once, [] {
    blas_select_cpu_kernels();
#ifdef SAFNET_HAVE_BLAS
    openblas_set_num_threads(1);
#endif
  });
}

namespace {

constexpr int kScratchSlots = 3;

struct Scratch {
  std::unique_ptr<float[]> data;
  std::size_t size = 0;
};

}  // namespace

float* thread_scratch(std::size_t count, int slot) {
  SAFNET_CHECK(slot >= 0 && slot < kScratchSlots);
  thread_local Scratch slots[kScratchSlots];
  Scratch& s = slots[slot];
  if (s.size < count) {
    // Grow geometrically so a sequence of slightly larger layers does not reallocate each time.
    const std::size_t size = count > 2 * s.size ? count : 2 * s.size;
    s.data.reset(new float[size]);
    s.size = size;
  }
  return s.data.get();
}

}  // namespace safnet::cpu
