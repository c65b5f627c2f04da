// Tests of host/faults/storage: round trips, rounding, saturation and byte layout of every format.
#include "host/faults/storage.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cuda/numeric.h"
#include "cuda/stored_word.h"
#include "host/check.h"

namespace safnet {
namespace {

std::vector<float> decode(const StorageBuffer& buf) {
  std::vector<float> out(static_cast<std::size_t>(buf.words()));
  decode_words(buf.bytes.data(), buf.dtype, buf.words(), out.data());
  return out;
}

std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

TEST(Storage, F32KeepsEveryBitPattern) {
  std::vector<float> x = {0.0f, -0.0f, 1.5f, -3.25e-42f, INFINITY, -INFINITY, NAN, std::numeric_limits<float>::max()};
  std::mt19937 gen(3);
  for (int i = 0; i < 1000; ++i) {
    const std::uint32_t u = gen();
    float f;
    std::memcpy(&f, &u, 4);
    x.push_back(f);
  }
  const StorageBuffer buf = encode_storage(x.data(), static_cast<std::int64_t>(x.size()), DType::f32());
  ASSERT_EQ(buf.words(), static_cast<std::int64_t>(x.size()));
  ASSERT_EQ(buf.bytes.size(), 4 * x.size());
  const std::vector<float> y = decode(buf);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(bits_of(y[i]), bits_of(x[i])) << i;
}

TEST(Storage, HalfFormatsRoundToNearestEvenAndOverflowToInf) {
  for (DType dt : {DType::f16(), DType::bf16()}) {
    const bool f16 = dt == DType::f16();
    const float max = f16 ? 65504.0f : 0x1.fep127f;  // largest finite value of the format
    const float ulp1 = f16 ? 0x1p-10f : 0x1p-7f;  // spacing just above 1
    // Exactly representable values come back unchanged; ties go to the even neighbour.
    const std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, 1.0f + ulp1, 1.0f + ulp1 / 2, 1.0f + 1.5f * ulp1,
                                  1.0f + 0.75f * ulp1, f16 ? 70000.0f : INFINITY, -INFINITY, NAN,
                                  f16 ? 0x1p-24f : 0x1p-133f};
    const std::vector<float> want = {0.0f, -0.0f, 1.0f, -2.5f, 1.0f + ulp1, 1.0f, 1.0f + 2 * ulp1,
                                     1.0f + ulp1, INFINITY, -INFINITY, NAN, f16 ? 0x1p-24f : 0x1p-133f};
    const StorageBuffer buf = encode_storage(x.data(), static_cast<std::int64_t>(x.size()), dt);
    ASSERT_EQ(buf.bytes.size(), 2 * x.size());
    const std::vector<float> y = decode(buf);
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(y[i])) << dt.name() << " " << i;
      } else {
        EXPECT_EQ(bits_of(y[i]), bits_of(want[i])) << dt.name() << " " << i << " x=" << x[i];
      }
    }
    // The largest finite value survives; one f32 ulp past the midpoint above it is infinity.
    const StorageBuffer m = encode_storage(&max, 1, dt);
    EXPECT_EQ(decode(m)[0], max) << dt.name();
    const float beyond = f16 ? 65520.0f : 0x1.ffp127f;  // the tie above max rounds to even: inf
    EXPECT_EQ(decode(encode_storage(&beyond, 1, dt))[0], INFINITY) << dt.name();
  }
}

TEST(Storage, HalfFormatsAreLittleEndianWords) {
  const float x[2] = {1.0f, -2.0f};
  const StorageBuffer h = encode_storage(x, 2, DType::f16());
  EXPECT_EQ(h.bytes, (std::vector<std::uint8_t>{0x00, 0x3c, 0x00, 0xc0}));
  const StorageBuffer b = encode_storage(x, 2, DType::bf16());
  EXPECT_EQ(b.bytes, (std::vector<std::uint8_t>{0x80, 0x3f, 0x00, 0xc0}));
}

TEST(Storage, FixedRoundTripsAndSaturatesInEveryFormat) {
  for (int m = 0; m <= 7; ++m) {
    const DType dt = DType::fixed(m, 7 - m);
    const float step = std::ldexp(1.0f, -(7 - m));
    // Every code round-trips exactly.
    std::vector<float> grid;
    for (int q = -128; q <= 127; ++q) grid.push_back(q * step);
    const StorageBuffer g = encode_storage(grid.data(), 256, dt);
    ASSERT_EQ(g.bytes.size(), 256u);
    EXPECT_EQ(decode(g), grid) << dt.name();
    for (int q = -128; q <= 127; ++q) EXPECT_EQ(static_cast<std::int8_t>(g.bytes[q + 128]), q) << dt.name();
    // Out of range saturates, ties round to even, NaN reads back as 0.
    const std::vector<float> x = {1000.0f, -1000.0f, INFINITY, -INFINITY, NAN, 127.5f * step, -128.5f * step,
                                  0.5f * step, 1.5f * step, -2.5f * step, 0.25f * step, 0.75f * step};
    const std::vector<float> want = {127 * step, -128 * step, 127 * step, -128 * step, 0.0f, 127 * step, -128 * step,
                                     0.0f, 2 * step, -2 * step, 0.0f, step};
    const StorageBuffer s = encode_storage(x.data(), static_cast<std::int64_t>(x.size()), dt);
    EXPECT_EQ(decode(s), want) << dt.name();
  }
}

// decode_words, decode_word and decode_stored read every word as its format's conversion of the
// little-endian bytes, at any byte alignment.
TEST(Storage, EveryDecoderReadsTheSameValueOfEachWord) {
  std::mt19937 gen(11);
  for (const DType dt : {DType::f32(), DType::f16(), DType::bf16(), DType::fixed(0, 7), DType::fixed(2, 5),
                         DType::fixed(7, 0)}) {
    const std::size_t size = dt.size();
    const int n = 4096;
    std::vector<std::uint8_t> bytes(1 + n * size);
    for (std::uint8_t& b : bytes) b = static_cast<std::uint8_t>(gen());
    const std::uint8_t* words = bytes.data() + 1;  // deliberately misaligned
    std::vector<float> all(n);
    decode_words(words, dt, n, all.data());
    const StorageFormat fmt = storage_format(dt);
    EXPECT_EQ(fmt.frac_bits, dt.kind == DType::Kind::fixed ? dt.n : 0) << dt.name();
    for (int i = 0; i < n; ++i) {
      const std::uint8_t* p = words + i * size;
      float want = 0.0f;
      switch (dt.kind) {
        case DType::Kind::f32: std::memcpy(&want, p, 4); break;
        case DType::Kind::f16: want = f16_bits_to_f32(static_cast<std::uint16_t>(p[0] | (p[1] << 8))); break;
        case DType::Kind::bf16: want = bf16_bits_to_f32(static_cast<std::uint16_t>(p[0] | (p[1] << 8))); break;
        default: want = fixed_to_f32(static_cast<std::int8_t>(p[0]), dt.n); break;
      }
      ASSERT_EQ(bits_of(all[i]), bits_of(want)) << dt.name() << " word " << i;
      ASSERT_EQ(bits_of(decode_word(p, dt)), bits_of(want)) << dt.name() << " word " << i;
      ASSERT_EQ(bits_of(decode_stored(words, fmt, i)), bits_of(want)) << dt.name() << " word " << i;
    }
  }
  const std::uint8_t zero[4] = {};
  EXPECT_THROW(storage_format(DType::u8()), Error);
  EXPECT_THROW(decode_word(zero, DType::i32()), Error);
}

TEST(Storage, EmptySpanAndBadInput) {
  const StorageBuffer e = encode_storage(nullptr, 0, DType::f16());
  EXPECT_EQ(e.words(), 0);
  decode_words(e.bytes.data(), e.dtype, 0, nullptr);
  const float x = 1.0f;
  EXPECT_THROW(encode_storage(&x, 1, DType::u8()), Error);
  EXPECT_THROW(encode_storage(&x, 1, DType::i32()), Error);
  EXPECT_THROW(encode_storage(&x, -1, DType::f32()), Error);
  EXPECT_THROW(encode_storage(nullptr, 3, DType::f32()), Error);
  try {
    encode_storage(&x, 1, DType::u8());
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("valid: f32 f16 bf16 fixedM.N"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace safnet
