// Tests of cuda/philox.h: the Philox4x32-10 bijection's known answers and cuRAND's stream layout.
#include "cuda/philox.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace safnet {
namespace {

void expect_block(const Philox4& got, const Philox4& want) {
  EXPECT_EQ(got.x, want.x);
  EXPECT_EQ(got.y, want.y);
  EXPECT_EQ(got.z, want.z);
  EXPECT_EQ(got.w, want.w);
}

// Random123's published known-answer vectors for philox4x32 with 10 rounds (kat_vectors).
TEST(Philox, BijectionKnownAnswers) {
  expect_block(philox4x32_10({0, 0, 0, 0}, 0, 0), {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  expect_block(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffu, 0xffffffffu),
               {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  expect_block(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0xa4093822u, 0x299f31d0u),
               {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

// Outputs of cuRAND 13.0's own curand_init(seed, subsequence, offset, &state) followed by
// curand(&state), from curand_kernel.h compiled for the host. They cover both halves of the
// key, subsequences that carry into the counter's top word, offsets inside a block, and
// offsets whose block index carries from the counter's first word into its second.
struct CurandCase {
  std::uint64_t seed, subsequence, offset;
  std::vector<std::uint32_t> out;
};

const CurandCase kCurandCases[] = {
    {0x0ull, 0x0ull, 0x0ull, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u, 0xf8e4cca4u, 0x5cb200dbu, 0xb1a574ebu, 0x097eff67u}},
    {0x123456789abcdefull, 0x0ull, 0x0ull, {0xb850222eu, 0xc58cb04bu, 0x14a7a020u, 0x7a84fff9u, 0xadca1466u, 0x523e0d85u, 0x65401425u, 0xb299da3fu}},
    {0x2aull, 0x7ull, 0x0ull, {0x67ee6f2cu, 0xe55410ccu, 0x6c7eca35u, 0x557398d3u, 0xe5dde940u, 0x600f6196u, 0x8fcdf8f1u, 0x2c8ed839u}},
    {0x2aull, 0x7ull, 0x5ull, {0x600f6196u, 0x8fcdf8f1u, 0x2c8ed839u, 0x24ecfc6eu, 0xf000aacdu, 0x571a4cf0u, 0xd301a3d5u, 0x945bcadau}},
    {0x2aull, 0x7ull, 0x3ull, {0x557398d3u, 0xe5dde940u, 0x600f6196u, 0x8fcdf8f1u, 0x2c8ed839u, 0x24ecfc6eu}},
    {0x2aull, 0xffffffffffffffffull, 0x0ull, {0xa60d816eu, 0x39046177u, 0xfe4109d3u, 0xfaa41625u, 0xf1dcfe03u, 0x51d2236fu, 0x82f1c9afu, 0x1b44d06bu}},
    {0x2aull, 0x100000000ull, 0x0ull, {0x20439b04u, 0x9807e022u, 0x5419fa3fu, 0xc8fa5a2du}},
    {0xffffffffffffffffull, 0x3ull, 0xfffffffffffffffdull, {0x0df0d628u, 0x7c9cf58fu, 0xe5e85068u, 0x0cf42c51u, 0x6e6f6a4eu, 0x73f45a38u, 0x864a6253u, 0xd13be89bu, 0x07e11da3u, 0x3d111ff0u, 0x32e6fba4u, 0xe5776229u}},
    {0x4d2ull, 0xfffffffffull, 0x400000001ull, {0xe178f8f8u, 0x37fb2c2fu, 0x525ef060u, 0x69891774u, 0xf6c14238u, 0xe9f966b4u, 0x11afcdc7u, 0xa00829e9u}},
    {0x7ull, 0x1ull, 0x3fffffffeull, {0x06008a9au, 0xaf884529u, 0x0074c12au, 0x90e06f5du, 0x275a0c0fu, 0xf2c41bf7u, 0x0ce57cb5u, 0x35ed4ec2u}},
};

TEST(Philox, MatchesCurandDeviceApiOutputs) {
  for (const CurandCase& c : kCurandCases) {
    Philox rng(c.seed, c.subsequence, c.offset);
    for (std::size_t i = 0; i < c.out.size(); ++i)
      EXPECT_EQ(rng.next(), c.out[i]) << "seed " << c.seed << " subsequence " << c.subsequence << " offset " << c.offset << " output " << i;
  }
}

// The bijection's block at counter (block index in the low 64 bits, subsequence in the high).
Philox4 block_at(std::uint64_t seed, std::uint64_t subsequence, std::uint64_t block) {
  return philox4x32_10({static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                        static_cast<std::uint32_t>(subsequence), static_cast<std::uint32_t>(subsequence >> 32)},
                       static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

std::uint32_t word_at(std::uint64_t seed, std::uint64_t subsequence, std::uint64_t index) {
  const Philox4 b = block_at(seed, subsequence, index / 4);
  const std::uint32_t words[4] = {b.x, b.y, b.z, b.w};
  return words[index % 4];
}

TEST(Philox, StreamIsBijectionOutputsInCounterOrder) {
  for (std::uint64_t seed : {0ull, 42ull, 0xdeadbeefcafef00dull})
    for (std::uint64_t sub : {0ull, 1ull, 999ull, 0xffffffffull, 0x123456789ull}) {
      Philox rng(seed, sub);
      for (std::uint64_t i = 0; i < 64; ++i) ASSERT_EQ(rng.next(), word_at(seed, sub, i)) << seed << " " << sub << " " << i;
    }
}

TEST(Philox, CounterCarriesAcrossWordsAndIntoSubsequenceHalf) {
  // Carry out of x into y, reached by an offset.
  Philox rng(5, 9, 0xffffffffull * 4 + 3);
  EXPECT_EQ(rng.next(), word_at(5, 9, 0xffffffffull * 4 + 3));
  EXPECT_EQ(rng.next(), word_at(5, 9, 0x100000000ull * 4));
  // Offsets reach only block 2^62 - 1, so the last block of a subsequence is set by hand: the
  // next block's counter carries through x and y into z, as a 128-bit increment does in cuRAND.
  Philox end(5, 9);
  end.ctr.x = end.ctr.y = 0xffffffffu;
  end.skip(0);  // recomputes the block at the new counter
  const Philox4 last = block_at(5, 9, ~std::uint64_t{0});
  for (std::uint32_t w : {last.x, last.y, last.z, last.w}) EXPECT_EQ(end.next(), w);
  EXPECT_EQ(end.next(), word_at(5, 10, 0));
}

TEST(Philox, OffsetEqualsDiscarding) {
  Philox base(77, 3);
  std::vector<std::uint32_t> stream(200);
  for (auto& w : stream) w = base.next();
  for (std::uint64_t off = 0; off < 100; ++off) {
    Philox rng(77, 3, off);
    for (std::uint64_t i = 0; i < 20; ++i) ASSERT_EQ(rng.next(), stream[off + i]) << "offset " << off;
  }
  // skip() on a generator in use, from every lane.
  for (std::uint64_t start = 0; start < 8; ++start)
    for (std::uint64_t n = 0; n < 50; ++n) {
      Philox rng(77, 3);
      for (std::uint64_t i = 0; i < start; ++i) rng.next();
      rng.skip(n);
      ASSERT_EQ(rng.next(), stream[start + n]) << start << " " << n;
    }
  // Large offsets land on the block index offset / 4, lane offset % 4.
  for (std::uint64_t off : {1ull << 22, (1ull << 40) + 3, 0x123456789abcdefull, ~0ull}) {
    Philox rng(77, 3, off);
    EXPECT_EQ(rng.next(), word_at(77, 3, off)) << off;
  }
}

TEST(Philox, Next64AndUniform53FollowTheirFormulas) {
  Philox a(11, 2), b(11, 2);
  for (int i = 0; i < 100; ++i) {
    const std::uint64_t hi = a.next(), lo = a.next();
    ASSERT_EQ(b.next64(), (hi << 32) | lo);
  }
  Philox c(11, 2), d(11, 2);
  for (int i = 0; i < 100; ++i) {
    const std::uint64_t m = c.next64() >> 11;
    ASSERT_EQ(d.uniform53(), static_cast<double>(m + 1) / 9007199254740992.0);
  }
}

TEST(Philox, BernoulliEqualsFullComparison) {
  // Thresholds whose high half equals the next draw's exercise the second word.
  for (std::uint64_t i = 0; i < 2000; ++i) {
    Philox peek(5, i), a(5, i), b(5, i);
    const std::uint64_t hi = peek.next(), lo = peek.next(), u = (hi << 32) | lo;
    const std::uint64_t thresholds[] = {0, ~std::uint64_t{0}, u, u + 1, hi << 32, (hi + 1) << 32, i * 0x9e3779b97f4a7c15ull};
    for (std::uint64_t t : thresholds) {
      Philox x = a, y = b;
      const bool want = y.next64() < t;
      ASSERT_EQ(x.bernoulli(t), want) << i << " " << t;
      if ((t >> 32) != hi) {
        ASSERT_EQ(x.next(), lo) << "second word drawn needlessly";
      }
    }
  }
}

TEST(Philox, Uniform53MomentsMatchUniform) {
  // Mean and variance of U(0,1) are 1/2 and 1/12; the sample mean's standard error is
  // sqrt(1/12 / n), the sample variance's is sqrt((mu4 - sigma^4) / n) with mu4 = 1/80.
  const int n = 200000;
  Philox rng(2024, 0);
  double sum = 0, sum2 = 0, lo = 1, hi = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform53();
    sum += u;
    sum2 += u * u;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var, 1.0 / 12, 5 * std::sqrt((1.0 / 80 - 1.0 / 144) / n));
  EXPECT_GT(lo, 0.0);
  EXPECT_LE(hi, 1.0);
}

// cuRAND's host generator (curandCreateGeneratorHost, CURAND_RNG_PSEUDO_PHILOX4_32_10) runs on
// the CPU. Its default ordering interleaves 65536 subsequences by 4-word block: output i is word
// i % 4 of block (i / 4) / 65536 of subsequence (i / 4) % 65536, shifted by the generator offset.
// Loaded at run time so the build needs no CUDA toolkit; skipped where libcurand is absent.
TEST(Philox, MatchesCurandHostGenerator) {
  void* lib = dlopen("libcurand.so.10", RTLD_NOW | RTLD_LOCAL);
  if (!lib) lib = dlopen("libcurand.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) GTEST_SKIP() << "libcurand not found: " << dlerror();
  using Create = int (*)(void**, int);
  using SetSeed = int (*)(void*, unsigned long long);
  using SetOffset = int (*)(void*, unsigned long long);
  using Generate = int (*)(void*, unsigned int*, std::size_t);
  using Destroy = int (*)(void*);
  const auto create = reinterpret_cast<Create>(dlsym(lib, "curandCreateGeneratorHost"));
  const auto set_seed = reinterpret_cast<SetSeed>(dlsym(lib, "curandSetPseudoRandomGeneratorSeed"));
  const auto set_offset = reinterpret_cast<SetOffset>(dlsym(lib, "curandSetGeneratorOffset"));
  const auto generate = reinterpret_cast<Generate>(dlsym(lib, "curandGenerate"));
  const auto destroy = reinterpret_cast<Destroy>(dlsym(lib, "curandDestroyGenerator"));
  ASSERT_TRUE(create && set_seed && set_offset && generate && destroy) << "libcurand lacks a host API symbol";
  constexpr int kPhilox = 161;  // CURAND_RNG_PSEUDO_PHILOX4_32_10
  constexpr std::uint64_t kThreads = 65536;
  for (std::uint64_t offset : {0ull, 5ull}) {
    void* gen = nullptr;
    if (create(&gen, kPhilox) != 0) GTEST_SKIP() << "curandCreateGeneratorHost failed";
    const std::uint64_t seed = 0x9e3779b97f4a7c15ull;
    ASSERT_EQ(set_seed(gen, seed), 0);
    ASSERT_EQ(set_offset(gen, offset), 0);
    std::vector<unsigned int> out(2 * 4 * kThreads + 16);  // two blocks per subsequence and a bit
    ASSERT_EQ(generate(gen, out.data(), out.size()), 0);
    destroy(gen);
    for (std::uint64_t i = 0; i < out.size(); ++i) {
      const std::uint64_t j = i + offset, block = j / 4;
      ASSERT_EQ(out[i], word_at(seed, block % kThreads, 4 * (block / kThreads) + j % 4)) << "offset " << offset << " output " << i;
    }
    // The same numbers through Philox's constructor.
    Philox rng(seed, 1, 4 + 1);
    EXPECT_EQ(rng.next(), out[4 * kThreads + 4 + 1 - offset]);
  }
  // The library stays loaded: unloading it would orphan memory its own runtime keeps for the
  // life of the process, which leak checkers then report.
}

}  // namespace
}  // namespace safnet
