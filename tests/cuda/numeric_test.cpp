// Tests of the storage-format conversions in cuda/numeric.h against independent references.
#include "cuda/numeric.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

namespace safnet {
namespace {

std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

float float_of(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// A 16-bit binary float format with `mant_bits` stored mantissa bits and the rest exponent.
struct Format16 {
  int mant_bits;
  int exp_bits() const { return 15 - mant_bits; }
  int bias() const { return (1 << (exp_bits() - 1)) - 1; }
  std::uint16_t inf() const { return static_cast<std::uint16_t>(((1u << exp_bits()) - 1) << mant_bits); }
  bool is_nan(std::uint16_t h) const { return (h & 0x7fffu) > inf(); }
  // Value from the IEEE field definitions, in double (exact for these formats).
  double value(std::uint16_t h) const {
    const int e = (h & 0x7fff) >> mant_bits;
    const int m = h & ((1 << mant_bits) - 1);
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (e == (1 << exp_bits()) - 1) return m ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
    if (e == 0) return sign * std::ldexp(m, 1 - bias() - mant_bits);
    return sign * std::ldexp((1 << mant_bits) + m, e - bias() - mant_bits);
  }
};

const Format16 kF16{10};
const Format16 kBf16{7};

// Round to nearest, ties to the even pattern, by search over every finite non-negative pattern;
// infinity sits one ulp above the largest finite value, which is where IEEE rounding puts it.
class NearestEven {
 public:
  explicit NearestEven(const Format16& f) {
    for (std::uint32_t h = 0; h < f.inf(); ++h) table_.emplace_back(f.value(static_cast<std::uint16_t>(h)), h);
    const double max = table_.back().first;
    const double top_ulp = max - table_[table_.size() - 2].first;
    table_.emplace_back(max + top_ulp, f.inf());
  }
  std::uint16_t encode(float x) const {
    const double a = std::fabs(static_cast<double>(x));
    const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
    if (a >= table_.back().first) return sign | table_.back().second;
    const auto hi = std::lower_bound(table_.begin(), table_.end(), std::make_pair(a, 0u));
    if (hi->first == a) return static_cast<std::uint16_t>(sign | hi->second);
    const auto lo = hi - 1;
    const double dlo = a - lo->first, dhi = hi->first - a;  // exact: both have few significant bits
    const auto pick = dlo < dhi ? lo : dhi < dlo ? hi : ((lo->second & 1) ? hi : lo);
    return static_cast<std::uint16_t>(sign | pick->second);
  }

 private:
  std::vector<std::pair<double, std::uint32_t>> table_;  // (value, bits), increasing
};

// f32 inputs around every rounding boundary of a 16-bit format: each midpoint between adjacent
// finite patterns (the ties), one f32 ulp either side, and the patterns themselves; plus a spread
// of random f32 bit patterns and the special values.
std::vector<float> boundary_inputs(const Format16& f) {
  std::vector<float> xs;
  for (std::uint32_t h = 0; h < f.inf(); ++h) {
    const double a = f.value(static_cast<std::uint16_t>(h));
    const double b = h + 1 < f.inf() ? f.value(static_cast<std::uint16_t>(h + 1)) : 2 * a - f.value(static_cast<std::uint16_t>(h - 1));
    const float mid = static_cast<float>((a + b) / 2);
    EXPECT_EQ(static_cast<double>(mid), (a + b) / 2) << "midpoint not exact in f32 for pattern " << h;
    for (float x : {static_cast<float>(a), mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      xs.push_back(x);
      xs.push_back(-x);
    }
  }
  std::mt19937 gen(1234);
  for (int i = 0; i < 1 << 20; ++i) {
    const float x = float_of(static_cast<std::uint32_t>(gen()));
    if (!std::isnan(x)) xs.push_back(x);
  }
  for (float x : {0.0f, -0.0f, INFINITY, -INFINITY, std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min()}) {
    xs.push_back(x);
    xs.push_back(-x);
  }
  return xs;
}

TEST(F16, DecodeMatchesFieldDefinitionForAllPatterns) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto b = static_cast<std::uint16_t>(h);
    const float got = f16_bits_to_f32(b);
    if (kF16.is_nan(b)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      EXPECT_TRUE(bits_of(got) & 0x400000u) << "NaN not quiet for " << std::hex << h;
      EXPECT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), kF16.value(b)) << std::hex << h;
      ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;
    }
  }
}

TEST(F16, DecodeThenEncodeIsIdentityForAllPatterns) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto b = static_cast<std::uint16_t>(h);
    const std::uint16_t back = f32_to_f16_bits(f16_bits_to_f32(b));
    if (kF16.is_nan(b)) {
      EXPECT_TRUE(kF16.is_nan(back)) << std::hex << h;
      EXPECT_TRUE(back & 0x200u) << "NaN not quiet for " << std::hex << h;
      EXPECT_EQ(back & 0x8000u, h & 0x8000u) << std::hex << h;
    } else {
      ASSERT_EQ(back, b) << std::hex << h;
    }
  }
}

TEST(F16, EncodeMatchesNearestEvenReference) {
  const NearestEven ref(kF16);
  for (float x : boundary_inputs(kF16)) ASSERT_EQ(f32_to_f16_bits(x), ref.encode(x)) << "x = " << x << " bits " << std::hex << bits_of(x);
}

TEST(F16, EncodeKnownValues) {
  EXPECT_EQ(f32_to_f16_bits(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16_bits(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16_bits(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16_bits(65519.996f), 0x7bff);
  EXPECT_EQ(f32_to_f16_bits(65520.0f), 0x7c00);  // tie between max and inf goes to inf (even)
  EXPECT_EQ(f32_to_f16_bits(1.0f + 0x1p-11f), 0x3c00);  // tie, lower is even
  EXPECT_EQ(f32_to_f16_bits(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie, upper is even
  EXPECT_EQ(f32_to_f16_bits(0x1p-24f), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16_bits(0x1p-25f), 0x0000);  // half of it: tie to zero
  EXPECT_EQ(f32_to_f16_bits(0x1.000002p-25f), 0x0001);
  EXPECT_EQ(f32_to_f16_bits(0x1.ff8p-15f), 0x03ff);  // largest subnormal
  EXPECT_EQ(f32_to_f16_bits(0x1.ffcp-15f), 0x0400);  // tie: rounds up into the smallest normal
  EXPECT_EQ(f32_to_f16_bits(-0.0f), 0x8000);
  const std::uint16_t nan = f32_to_f16_bits(float_of(0x7f800001u));  // signalling in, quiet out
  EXPECT_TRUE(kF16.is_nan(nan));
  EXPECT_TRUE(nan & 0x200u);
}

#if defined(__FLT16_MANT_DIG__)
// The compiler's own _Float16 conversion as a second, independent reference, over every 509th f32
// bit pattern (a stride coprime to every field width, so all exponents and low bits are hit).
TEST(F16, EncodeMatchesCompilerFloat16) {
  for (std::uint64_t u = 0; u < (std::uint64_t{1} << 32); u += 509) {
    const float x = float_of(static_cast<std::uint32_t>(u));
    const _Float16 h = static_cast<_Float16>(x);
    std::uint16_t want;
    std::memcpy(&want, &h, 2);
    const std::uint16_t got = f32_to_f16_bits(x);
    if (std::isnan(x)) {
      ASSERT_TRUE(kF16.is_nan(got)) << std::hex << u;
    } else {
      ASSERT_EQ(got, want) << std::hex << u;
    }
  }
}
#endif

TEST(Bf16, DecodeMatchesFieldDefinitionForAllPatterns) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto b = static_cast<std::uint16_t>(h);
    const float got = bf16_bits_to_f32(b);
    if (kBf16.is_nan(b)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      EXPECT_TRUE(bits_of(got) & 0x400000u) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), kBf16.value(b)) << std::hex << h;
      ASSERT_EQ(bits_of(got), h << 16) << std::hex << h;
    }
  }
}

TEST(Bf16, DecodeThenEncodeIsIdentityForAllPatterns) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto b = static_cast<std::uint16_t>(h);
    const std::uint16_t back = f32_to_bf16_bits(bf16_bits_to_f32(b));
    if (kBf16.is_nan(b)) {
      EXPECT_TRUE(kBf16.is_nan(back) && (back & 0x40u)) << std::hex << h;
    } else {
      ASSERT_EQ(back, b) << std::hex << h;
    }
  }
}

TEST(Bf16, EncodeMatchesNearestEvenReference) {
  const NearestEven ref(kBf16);
  for (float x : boundary_inputs(kBf16)) ASSERT_EQ(f32_to_bf16_bits(x), ref.encode(x)) << "x = " << x << " bits " << std::hex << bits_of(x);
}

TEST(Bf16, Ties) {
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x3f808000u)), 0x3f80);  // tie, lower even
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x3f818000u)), 0x3f82);  // tie, upper even
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x3f808001u)), 0x3f81);
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x3f817fffu)), 0x3f81);
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x7f7f8000u)), 0x7f80);  // tie at the top goes to inf
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x00008000u)), 0x0000);  // subnormal tie to zero
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x00018000u)), 0x0002);
  EXPECT_EQ(f32_to_bf16_bits(float_of(0x807fc000u)), 0x8080);  // rounds up into the smallest normal
  const std::uint16_t nan = f32_to_bf16_bits(float_of(0xff800001u));  // low payload bits only
  EXPECT_TRUE(kBf16.is_nan(nan) && (nan & 0x8000u));
}

// value = q / 2^n, round half to even in double, saturate: an independent reference.
std::int8_t fixed_reference(float x, int n) {
  if (std::isnan(x)) return 0;
  const double y = std::nearbyint(std::ldexp(static_cast<double>(x), n));  // default mode: ties to even
  return static_cast<std::int8_t>(std::clamp(y, -128.0, 127.0));
}

TEST(Fixed, DecodeAllCodesOfEveryFormat) {
  for (int n = 0; n <= 7; ++n)
    for (int q = -128; q <= 127; ++q)
      ASSERT_EQ(fixed_to_f32(static_cast<std::int8_t>(q), n), static_cast<float>(std::ldexp(q, -n))) << "fixed(" << 7 - n << "," << n << ") q=" << q;
}

TEST(Fixed, EncodeRoundsTiesToEvenAndSaturatesInEveryFormat) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> wide(-300.0f, 300.0f);
  for (int n = 0; n <= 7; ++n) {
    std::vector<float> xs;
    // Every multiple of a quarter code from beyond -128 to beyond 127: exact codes, ties, and
    // points between, including the ties next to the saturation limits (127.5, -128.5).
    for (int k = -4 * 140; k <= 4 * 140; ++k) xs.push_back(static_cast<float>(std::ldexp(k / 4.0, -n)));
    for (int i = 0; i < 100000; ++i) xs.push_back(std::ldexp(wide(gen), -n));
    for (float x : {0.0f, -0.0f, INFINITY, -INFINITY, 1e30f, -1e30f, std::numeric_limits<float>::max(),
                    std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
                    std::nextafter(0.5f, 0.0f), std::nextafter(0.5f, 1.0f)})
      xs.push_back(std::ldexp(x, -n));
    for (float x : xs) ASSERT_EQ(f32_to_fixed(x, n), fixed_reference(x, n)) << "fixed(" << 7 - n << "," << n << ") x=" << x;
    EXPECT_EQ(f32_to_fixed(NAN, n), 0);
    EXPECT_EQ(f32_to_fixed(INFINITY, n), 127);
    EXPECT_EQ(f32_to_fixed(-INFINITY, n), -128);
    EXPECT_EQ(f32_to_fixed(static_cast<float>(std::ldexp(2.5, -n)), n), 2);
    EXPECT_EQ(f32_to_fixed(static_cast<float>(std::ldexp(-2.5, -n)), n), -2);
    EXPECT_EQ(f32_to_fixed(static_cast<float>(std::ldexp(3.5, -n)), n), 4);
    EXPECT_EQ(f32_to_fixed(static_cast<float>(std::ldexp(126.5, -n)), n), 126);
    EXPECT_EQ(f32_to_fixed(static_cast<float>(std::ldexp(-127.5, -n)), n), -128);
  }
}

TEST(Fixed, EncodeOfDecodeIsIdentity) {
  for (int n = 0; n <= 7; ++n)
    for (int q = -128; q <= 127; ++q)
      ASSERT_EQ(f32_to_fixed(fixed_to_f32(static_cast<std::int8_t>(q), n), n), q) << "n=" << n;
}

}  // namespace
}  // namespace safnet
