// OpenBLAS kernel selection: a CPU with AVX2 never runs the SSE3 fallback kernels.
#include <gtest/gtest.h>

#include <cstdlib>

#include "host/cpu/blas_kernels.h"
#include "host/cpu/parallel.h"

namespace safnet::cpu {
namespace {

TEST(BlasKernels, AnAvx2CpuDoesNotRunTheSse3Fallback) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) GTEST_SKIP() << "OPENBLAS_CORETYPE is set: the user's choice stands";
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) GTEST_SKIP() << "this CPU has no AVX2 + FMA";
  blas_use_calling_thread();
  const std::string name = blas_kernel_name();
  EXPECT_NE(name.rfind("Prescott", 0), 0u) << name;
  EXPECT_NE(name.rfind("unknown", 0), 0u) << name;
}

}  // namespace
}  // namespace safnet::cpu
