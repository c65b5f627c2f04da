// OpenBLAS kernel selection by CPU features (see blas_kernels.h).
#include "host/cpu/blas_kernels.h"

#include <cstdlib>
#include <cstring>

#ifndef SAFNET_HAVE_BLAS
// Built without BLAS (SAFNET_BLAS=OFF): the GEMMs run host/cpu/gemm.cpp's own loop.
namespace safnet::cpu {
void blas_select_cpu_kernels() {}
std::string blas_kernel_name() { return "none (built without BLAS: own blocked GEMM)"; }
}  // namespace safnet::cpu
#else
#include <cblas.h>
#include "host/cpu/cpu_features.h"

// Exported by DYNAMIC_ARCH builds of OpenBLAS; weak, so a build without them still links.
extern "C" void gotoblas_dynamic_init(void) __attribute__((weak));
extern "C" void gotoblas_dynamic_quit(void) __attribute__((weak));

namespace safnet::cpu {

namespace {

bool selected_by_us = false;

// The kernel family this CPU's features support, or nullptr for none better than the fallback.
const char* best_core_for_this_cpu() {
  if (cpu_has_avx512_skylakex()) return "SkylakeX";
  if (cpu_has_avx2_fma()) return "Haswell";
  return nullptr;
}

}  // namespace

void blas_select_cpu_kernels() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
  const char* detected = openblas_get_corename();
  if (detected == nullptr || strcasecmp(detected, "prescott") != 0) return;
  const char* best = best_core_for_this_cpu();
  if (best == nullptr) return;
  // OpenBLAS reads OPENBLAS_CORETYPE when it (re)initialises its kernel table; no BLAS call has
  // run yet, so swapping the table is safe. The variable is removed again so that it does not
  // reach child processes as if the user had set it.
  setenv("OPENBLAS_CORETYPE", best, 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
  selected_by_us = true;
}

std::string blas_kernel_name() {
  const char* name = openblas_get_corename();
  std::string s = name != nullptr ? name : "unknown";
  if (selected_by_us) s += " (chosen by CPU features)";
  return s;
}

}  // namespace safnet::cpu
#endif  // SAFNET_HAVE_BLAS
