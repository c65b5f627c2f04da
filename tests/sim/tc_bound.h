// How far a tensor-core math mode's dot product may be from the exact one, for the kernel tests'
// tolerances (cuda/kernels/tc_gemm.h, cuda/math_mode.h).
#pragma once
#include "cuda/math_mode.h"

namespace safnet::test {

// Bound on |y_device - y_exact| / sum |a| |b| for a dot product of `depth` terms in math mode m:
// - operand rounding: TF32 and BF16 round each operand to nearest, relatively by at most
//   u_in = 2^-11 and 2^-8, so a product is off by (2 u_in + u_in^2). 3xTF32 writes x = big + small
//   + r with |r| <= 2^-11 |x - big| <= 2^-22 |x| and drops small*small <= 2^-22 (1 + 2^-11)^2 |x y|:
//   (3 + 2^-8) 2^-22 in all.
// - accumulation: each mma_sync adds kk products (8 TF32, 16 BF16) to the f32 accumulator; the
//   tensor core aligns the addends to the largest and truncates, at most (kk + 1) ulp of the
//   largest, so (kk + 1) 2^-23 of the magnitudes summed so far, for each of the ceil(depth / kk)
//   steps (three times as many with 3xTF32, whose added magnitudes are (1 + 2^-9) |x y|).
inline double tc_rel_bound(safnet::MathMode m, long depth) {
  const int kk = m == safnet::MathMode::bf16 ? 16 : 8;
  const long steps = (depth + kk - 1) / kk * (m == safnet::MathMode::tf32x3 ? 3 : 1);
  const double mags = m == safnet::MathMode::tf32x3 ? 1 + 0x1p-9 : 1.0;
  double in = 0;
  switch (m) {
    case safnet::MathMode::tf32: in = 2 * 0x1p-11 + 0x1p-22; break;
    case safnet::MathMode::bf16: in = 2 * 0x1p-8 + 0x1p-16; break;
    case safnet::MathMode::tf32x3: in = (3 + 0x1p-8) * 0x1p-22; break;
    case safnet::MathMode::fp32: break;
  }
  return in + steps * (kk + 1) * 0x1p-23 * mags * (1 + in);
}

}  // namespace safnet::test
