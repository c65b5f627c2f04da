// Which OpenBLAS kernels the CPU backend's GEMMs run on.
#pragma once
#include <string>

namespace safnet::cpu {

// Where OpenBLAS (built with DYNAMIC_ARCH, as Debian's is) does not recognise the CPU model, it
// falls back to its SSE3 "Prescott" kernels, 3-5x slower than the AVX2/AVX-512 ones the CPU can
// run (new Xeon models under OpenBLAS 0.3.21, for example). This re-selects the kernels by the
// CPU's features instead: SkylakeX with AVX-512, Haswell with AVX2 + FMA. It does nothing when
// OPENBLAS_CORETYPE is set, when OpenBLAS recognised the CPU, or when the library cannot switch.
// Call once, before the first BLAS call (blas_use_calling_thread does); a second call finds the
// kernels already chosen and changes nothing.
void blas_select_cpu_kernels();

// OpenBLAS's kernel family in use ("SkylakeX", "Haswell", ...), with "(chosen by CPU features)" when
// blas_select_cpu_kernels changed it.
std::string blas_kernel_name();

}  // namespace safnet::cpu
