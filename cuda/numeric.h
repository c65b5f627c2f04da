// Storage number formats shared by CPU and GPU: f16, bf16 and 8-bit fixed(m, n) to and from f32.
// f16/bf16 round to nearest even (NaN stays NaN, overflow goes to inf); fixed rounds to nearest,
// ties to even, and saturates to [-128, 127] / 2^n; NaN converts to 0 in fixed.
#pragma once
#include <cstdint>

#include "cuda/hd.h"

namespace safnet {

SAFNET_HD std::uint16_t f32_to_f16_bits(float x);
SAFNET_HD float f16_bits_to_f32(std::uint16_t h);
SAFNET_HD std::uint16_t f32_to_bf16_bits(float x);
SAFNET_HD float bf16_bits_to_f32(std::uint16_t h);
SAFNET_HD std::int8_t f32_to_fixed(float x, int frac_bits);
SAFNET_HD float fixed_to_f32(std::int8_t q, int frac_bits);

}  // namespace safnet

#include "cuda/numeric_impl.h"
