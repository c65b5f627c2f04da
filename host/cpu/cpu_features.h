// What this CPU can run, detected once, and the switches of the hand-vectorised kernels; the
// blocked convolution kernels and the OpenBLAS kernel selection both ask here.
#pragma once

namespace safnet::cpu {

// AVX2 and FMA (the blocked AVX2 kernels; OpenBLAS's Haswell kernels).
bool cpu_has_avx2_fma();
// AVX-512F (the blocked kernels' AVX-512 variant).
bool cpu_has_avx512f();
// AVX-512 F, BW, VL, DQ and CD (OpenBLAS's SkylakeX kernels).
bool cpu_has_avx512_skylakex();

// Whether the AVX2 kernels run: where the CPU has AVX2 and FMA, unless turned off. Turning them
// off lets the tests check the portable path on the same machine; turning them on where the CPU
// lacks them has no effect. Not meant to change while kernels run.
bool avx2_kernels_enabled();
void set_avx2_kernels_enabled(bool on);
// Whether the blocked kernel's AVX-512 variant runs (where the CPU has AVX-512F and the AVX2
// kernels are enabled, unless turned off). It gives the same bits as the AVX2 kernel.
bool avx512_kernels_enabled();
void set_avx512_kernels_enabled(bool on);

}  // namespace safnet::cpu
