// How conv2d and linear multiply on a GPU: the FP32 SIMT kernels, or tensor cores with TF32 or BF16
// operands and FP32 accumulation. Each mode's accuracy is in README.md ("Math modes").
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace safnet {

enum class MathMode : std::uint8_t {
  fp32,    // FP32 FMA on the SIMT cores: the reference
  tf32x3,  // split TF32 (x = big + small, three tensor-core products): about FP32 accuracy
  tf32,    // operands rounded to TF32 (10 mantissa bits)
  bf16,    // operands rounded to BF16 (7 mantissa bits)
};

inline constexpr MathMode kMathModes[] = {MathMode::fp32, MathMode::tf32x3, MathMode::tf32, MathMode::bf16};

inline const char* math_mode_name(MathMode m) {
  switch (m) {
    case MathMode::fp32: return "fp32";
    case MathMode::tf32x3: return "3xtf32";
    case MathMode::tf32: return "tf32";
    case MathMode::bf16: return "bf16";
  }
  return "?";
}

inline std::optional<MathMode> math_mode_from_name(std::string_view name) {
  for (MathMode m : kMathModes)
    if (name == math_mode_name(m)) return m;
  return std::nullopt;
}

}  // namespace safnet
