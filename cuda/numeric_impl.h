// Definitions of the storage-format conversions declared in cuda/numeric.h (integer bit
// manipulation only, so host and device round identically whatever the FP flags).
#pragma once
#include <cstdint>
#include <cstring>

#include "cuda/hd.h"

namespace safnet {

namespace numeric_detail {

SAFNET_HD std::uint32_t float_bits(float x) {
  std::uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

SAFNET_HD float bits_float(std::uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

// Rounds v / 2^shift to nearest, ties to even (shift in 1..31).
SAFNET_HD std::uint32_t shift_right_rne(std::uint32_t v, int shift) {
  const std::uint32_t q = v >> shift;
  const std::uint32_t rem = v & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  return q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
}

}  // namespace numeric_detail

SAFNET_HD std::uint16_t f32_to_f16_bits(float x) {
  using namespace numeric_detail;
  const std::uint32_t u = float_bits(x);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u)  // NaN: keep the top payload bits, force the quiet bit
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  // 65520 = 65504 + half an ulp: ties go to the even neighbour, which is infinity.
  if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (a >= 0x38800000u) {  // normal f16 (>= 2^-14); a carry out of the mantissa bumps the exponent
    const std::uint32_t rebased = a - ((127u - 15u) << 23);
    return static_cast<std::uint16_t>(sign | shift_right_rne(rebased, 13));
  }
  // 2^-25 is half the smallest subnormal: it and everything below round to zero (tie to even).
  if (a <= 0x33000000u) return static_cast<std::uint16_t>(sign);
  // Subnormal f16: the value is mant * 2^(e - 150); in units of 2^-24 that is mant >> (126 - e).
  const int e = static_cast<int>(a >> 23);
  const std::uint32_t mant = (a & 0x7fffffu) | 0x800000u;
  return static_cast<std::uint16_t>(sign | shift_right_rne(mant, 126 - e));
}

SAFNET_HD float f16_bits_to_f32(std::uint16_t h) {
  using namespace numeric_detail;
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  if (e == 0x1fu) return bits_float(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0u));
  if (e != 0) return bits_float(sign | ((e + 127u - 15u) << 23) | (mant << 13));
  if (mant == 0) return bits_float(sign);
  // Subnormal: normalise so the leading one becomes the implicit bit.
  std::uint32_t exp = 127u - 14u;
  while (!(mant & 0x400u)) {
    mant <<= 1;
    --exp;
  }
  return bits_float(sign | (exp << 23) | ((mant & 0x3ffu) << 13));
}

SAFNET_HD std::uint16_t f32_to_bf16_bits(float x) {
  using namespace numeric_detail;
  const std::uint32_t u = float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  // Adding 0x7fff plus the kept lsb rounds to nearest even; overflow carries into infinity.
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

SAFNET_HD float bf16_bits_to_f32(std::uint16_t h) {
  using namespace numeric_detail;
  std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x400000u;
  return bits_float(u);
}

// Precondition: 0 <= frac_bits <= 7 (DType::fixed guarantees it).
SAFNET_HD std::int8_t f32_to_fixed(float x, int frac_bits) {
  if (x != x) return 0;
  // Scaling by 2^frac_bits is exact (or overflows to inf, which saturates below).
  const float y = x * static_cast<float>(1u << frac_bits);
  if (y >= 127.0f) return 127;
  if (y <= -128.0f) return -128;
  int t = static_cast<int>(y);  // toward zero; exact for |y| < 128
  const float frac = y - static_cast<float>(t);  // exact
  if (frac > 0.5f || (frac == 0.5f && (t & 1))) ++t;
  if (frac < -0.5f || (frac == -0.5f && (t & 1))) --t;
  return static_cast<std::int8_t>(t);
}

SAFNET_HD float fixed_to_f32(std::int8_t q, int frac_bits) {
  // 2^-frac_bits built from its exponent so the product is exact under any division flags.
  const float scale = numeric_detail::bits_float(static_cast<std::uint32_t>(127 - frac_bits) << 23);
  return static_cast<float>(q) * scale;
}

}  // namespace safnet
