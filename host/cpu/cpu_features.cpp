// CPU feature detection and the kernel switches (see cpu_features.h).
#include "host/cpu/cpu_features.h"

#include <atomic>

namespace safnet::cpu {

namespace {

std::atomic<bool> avx2_on{true};
std::atomic<bool> avx512_on{true};

}  // namespace

bool cpu_has_avx2_fma() {
  static const bool has = (__builtin_cpu_init(), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
  return has;
}

bool cpu_has_avx512f() {
  static const bool has = (__builtin_cpu_init(), __builtin_cpu_supports("avx512f"));
  return has;
}

bool cpu_has_avx512_skylakex() {
  static const bool has =
      (__builtin_cpu_init(), __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                                 __builtin_cpu_supports("avx512cd"));
  return has;
}

bool avx2_kernels_enabled() { return avx2_on.load(std::memory_order_relaxed) && cpu_has_avx2_fma(); }

void set_avx2_kernels_enabled(bool on) { avx2_on.store(on, std::memory_order_relaxed); }

bool avx512_kernels_enabled() {
  return avx2_kernels_enabled() && avx512_on.load(std::memory_order_relaxed) && cpu_has_avx512f();
}

void set_avx512_kernels_enabled(bool on) { avx512_on.store(on, std::memory_order_relaxed); }

}  // namespace safnet::cpu
