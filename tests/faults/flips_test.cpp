// Tests of host/faults/flips: the flip distribution (counts, positions, gaps), determinism,
// chunk layout, masks, fault application and parsing.
#include "host/faults/flips.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <vector>

#include "host/check.h"
#include "host/backend.h"
#include "host/faults/storage.h"

namespace safnet {
namespace {

// Regularized upper incomplete gamma Q(a, x) (series below a + 1, continued fraction above).
double gamma_q(double a, double x) {
  if (x <= 0) return 1.0;
  const double log_front = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000 && std::fabs(term) > 1e-17 * std::fabs(sum); ++n) {
      term *= x / (a + n);
      sum += term;
    }
    return 1.0 - sum * std::exp(log_front);
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < 1e-16) break;
  }
  return std::exp(log_front) * h;
}

// P(chi-square with df degrees of freedom >= x).
double chi2_sf(double x, int df) { return gamma_q(df / 2.0, x / 2.0); }

// Significance of every goodness-of-fit test below: a correct sampler fails one with
// probability 1e-4 (the seeds are fixed, so a pass is reproducible).
constexpr double kAlpha = 1e-4;

// Pearson's statistic of observed counts against expected counts.
double chi2_stat(const std::vector<double>& observed, const std::vector<double>& expected) {
  double s = 0;
  for (std::size_t i = 0; i < observed.size(); ++i) s += (observed[i] - expected[i]) * (observed[i] - expected[i]) / expected[i];
  return s;
}

TEST(ChiSquare, SurvivalFunctionKnownValues) {
  // Closed forms: df = 2 gives exp(-x/2); df = 1 gives erfc(sqrt(x/2)).
  for (double x : {0.1, 1.0, 5.0, 30.0}) {
    EXPECT_NEAR(chi2_sf(x, 2), std::exp(-x / 2), 1e-12);
    EXPECT_NEAR(chi2_sf(x, 1), std::erfc(std::sqrt(x / 2)), 1e-12);
  }
  // df = 4: (1 + x/2) exp(-x/2).
  for (double x : {0.5, 3.0, 40.0}) EXPECT_NEAR(chi2_sf(x, 4), (1 + x / 2) * std::exp(-x / 2), 1e-12);
}

std::int64_t popcount_bits(std::uint64_t m) {
  std::int64_t k = 0;
  for (; m; m &= m - 1) ++k;
  return k;
}

// Flip counts over many trials against Binomial(E, ber): sample mean within 5 standard errors
// of E p, sample variance within 5 standard errors of E p q (its standard error from the
// binomial's fourth central moment mu4 = E p q (1 + 3 (E - 2) p q)).
void check_binomial_counts(const FlipSpec& spec, int trials, std::uint64_t seed) {
  const double e = static_cast<double>(spec.words * popcount_bits(spec.bit_mask & (spec.word_bits == 64 ? ~0ull : (1ull << spec.word_bits) - 1)));
  const double p = spec.ber, q = 1 - p;
  const double var = e * p * q;
  const double mu4 = e * p * q * (1 + 3 * (e - 2) * p * q);
  double sum = 0, sum2 = 0;
  for (int t = 0; t < trials; ++t) {
    const double c = static_cast<double>(sample_flips(seed, static_cast<std::uint64_t>(t), spec).size());
    sum += c;
    sum2 += c * c;
  }
  const double n = trials;
  const double mean = sum / n;
  const double s2 = (sum2 - n * mean * mean) / (n - 1);
  const double se_mean = std::sqrt(var / n);
  const double se_var = std::sqrt((mu4 - var * var * (n - 3) / (n - 1)) / n);
  EXPECT_NEAR(mean, e * p, 5 * se_mean) << "E=" << e << " ber=" << p;
  EXPECT_NEAR(s2, var, 5 * se_var) << "E=" << e << " ber=" << p;
}

TEST(Flips, CountIsBinomialAcrossBerRange) {
  // Several chunks with a ragged last one (320000 bits = 4.88 chunks), tiny to large ber.
  check_binomial_counts({10000, 32, ~0ull, 1e-3}, 2000, 1);
  check_binomial_counts({10000, 32, ~0ull, 1e-5}, 4000, 2);
  check_binomial_counts({1 << 20, 16, ~0ull, 1e-7}, 1000, 3);  // 2^24 bits, 256 chunks
  check_binomial_counts({3000, 8, ~0ull, 0.3}, 500, 4);
  check_binomial_counts({300, 8, ~0ull, 0.97}, 500, 5);
}

TEST(Flips, PositionsUniformOverBitsAndWords) {
  const FlipSpec spec{20000, 32, ~0ull, 2e-3};  // 640000 bits, about 1280 flips per trial
  constexpr int kWordBins = 50;
  std::vector<double> by_bit(32, 0), by_word(kWordBins, 0);
  double total = 0;
  for (std::uint64_t t = 0; t < 300; ++t)
    for (const FlipSite& s : sample_flips(99, t, spec)) {
      by_bit[static_cast<std::size_t>(s.bit)] += 1;
      by_word[static_cast<std::size_t>(s.word * kWordBins / spec.words)] += 1;
      total += 1;
    }
  const std::vector<double> want_bit(32, total / 32), want_word(kWordBins, total / kWordBins);
  EXPECT_GT(chi2_sf(chi2_stat(by_bit, want_bit), 31), kAlpha);
  EXPECT_GT(chi2_sf(chi2_stat(by_word, want_word), kWordBins - 1), kAlpha);
}

// Distances between consecutive flips (across chunk boundaries too) are Geometric(ber):
// P(a <= G < b) = q^a - q^b. This checks every binary digit of the gap sampler and the joins.
TEST(Flips, GapsAreGeometric) {
  const double ber = 1e-3, q = 1 - ber;
  const FlipSpec spec{100000, 32, ~0ull, ber};  // 3.2M bits, 49 chunks, about 3200 flips
  // Bin edges at the geometric's deciles and beyond, so each bin expects plenty.
  std::vector<std::int64_t> edges = {0};
  for (double f = 0.1; f < 0.999; f += 0.1) edges.push_back(static_cast<std::int64_t>(std::ceil(std::log(1 - f) / std::log(q))));
  edges.push_back(static_cast<std::int64_t>(std::ceil(std::log(1e-3) / std::log(q))));
  const std::size_t bins = edges.size();  // the last bin is [edges.back(), inf)
  std::vector<double> observed(bins, 0);
  double gaps = 0;
  for (std::uint64_t t = 0; t < 100; ++t) {
    const auto sites = sample_flips(5, t, spec);
    for (std::size_t i = 1; i < sites.size(); ++i) {
      const std::int64_t e0 = sites[i - 1].word * 32 + sites[i - 1].bit, e1 = sites[i].word * 32 + sites[i].bit;
      const std::int64_t g = e1 - e0 - 1;
      std::size_t b = bins - 1;
      while (g < edges[b]) --b;
      observed[b] += 1;
      gaps += 1;
    }
  }
  std::vector<double> expected(bins);
  for (std::size_t b = 0; b < bins; ++b) {
    const double hi = b + 1 < bins ? std::pow(q, static_cast<double>(edges[b + 1])) : 0.0;
    expected[b] = gaps * (std::pow(q, static_cast<double>(edges[b])) - hi);
  }
  // A gap longer than the bits left in the trial cannot be observed; with 3.2M bits and
  // ber 1e-3 that truncation changes the expected counts by far less than their noise.
  EXPECT_GT(chi2_sf(chi2_stat(observed, expected), static_cast<int>(bins) - 1), kAlpha);
}

// Flips per f16 word against Binomial(16, ber): checks independence of nearby bits.
TEST(Flips, FlipsPerWordAreBinomial) {
  const double ber = 0.05;
  const FlipSpec spec{2000, 16, ~0ull, ber};
  std::vector<double> observed(4, 0);  // 0, 1, 2, >= 3 flips in a word
  std::vector<std::int64_t> per_word(static_cast<std::size_t>(spec.words));
  const int trials = 100;
  for (std::uint64_t t = 0; t < trials; ++t) {
    std::fill(per_word.begin(), per_word.end(), 0);
    for (const FlipSite& s : sample_flips(8, t, spec)) ++per_word[static_cast<std::size_t>(s.word)];
    for (std::int64_t c : per_word) observed[static_cast<std::size_t>(std::min<std::int64_t>(c, 3))] += 1;
  }
  std::vector<double> p(4, 0);
  for (int c = 0; c <= 2; ++c) p[c] = std::tgamma(17) / (std::tgamma(c + 1) * std::tgamma(17 - c)) * std::pow(ber, c) * std::pow(1 - ber, 16 - c);
  p[3] = 1 - p[0] - p[1] - p[2];
  std::vector<double> expected(4);
  for (int c = 0; c < 4; ++c) expected[c] = p[c] * static_cast<double>(spec.words) * trials;
  EXPECT_GT(chi2_sf(chi2_stat(observed, expected), 3), kAlpha);
}

TEST(Flips, SortedUniqueInRangeAndDeterministic) {
  const FlipSpec spec{70000, 32, ~0ull, 1e-3};
  const auto a = sample_flips(123, 7, spec);
  ASSERT_FALSE(a.empty());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_GE(a[i].word, 0);
    ASSERT_LT(a[i].word, spec.words);
    ASSERT_GE(a[i].bit, 0);
    ASSERT_LT(a[i].bit, 32);
    if (i > 0) {
      ASSERT_TRUE(a[i - 1].word < a[i].word || (a[i - 1].word == a[i].word && a[i - 1].bit < a[i].bit));
    }
  }
  EXPECT_EQ(sample_flips(123, 7, spec), a);
  EXPECT_NE(sample_flips(123, 8, spec), a);
  EXPECT_NE(sample_flips(124, 7, spec), a);
}

// Growing the buffer keeps the sites of the common prefix: chunk c's draws depend only on c,
// and a shorter chunk stops at the first gap that leaves it.
TEST(Flips, SitesOfAPrefixDoNotDependOnTheBufferLength) {
  const FlipSpec small{10000, 32, ~0ull, 2e-3}, large{25000, 32, ~0ull, 2e-3};
  const auto a = sample_flips(31, 4, small);
  auto b = sample_flips(31, 4, large);
  std::erase_if(b, [&](const FlipSite& s) { return s.word >= small.words; });
  EXPECT_EQ(a, b);
}

// q^m in long double, from ber itself (1 - ber is not exact even in long double).
long double q_power(double ber, long double m) { return std::exp(m * std::log1p(-static_cast<long double>(ber))); }

// u < t for the 64-bit u whose high word is the next draw, the low word drawn only if needed.
bool below(Philox& rng, std::uint64_t t) {
  const std::uint64_t hi = rng.next();
  if (hi != t >> 32) return hi < t >> 32;
  const std::uint64_t u = (hi << 32) | rng.next();
  return u < t;
}

// An independent implementation of the documented algorithm (flips.h, steps 1-4) with
// thresholds evaluated in long double.
std::vector<FlipSite> documented_sampler(std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec) {
  std::vector<int> pos;
  for (int b = 0; b < spec.word_bits; ++b)
    if ((spec.bit_mask >> b) & 1) pos.push_back(b);
  const std::int64_t k = static_cast<std::int64_t>(pos.size()), total = spec.words * k;
  const long double two64 = 18446744073709551616.0L;
  const auto far = static_cast<std::uint64_t>(q_power(spec.ber, 65536.0L) * two64);
  std::uint64_t bit[16];
  for (int j = 0; j < 16; ++j) {
    const long double a = q_power(spec.ber, std::ldexp(1.0L, j));
    bit[j] = static_cast<std::uint64_t>(a / (1 + a) * two64);
  }
  std::vector<FlipSite> out;
  for (std::int64_t c = 0; c * 65536 < total; ++c) {
    Philox rng(seed, trial, static_cast<std::uint64_t>(c) * (1ull << 22));
    const std::int64_t len = std::min<std::int64_t>(65536, total - c * 65536);
    std::int64_t at = 0;
    while (at < len) {
      if (below(rng, far)) break;
      std::int64_t g = 0;
      for (int j = 0; j < 16; ++j) g += below(rng, bit[j]) ? (std::int64_t{1} << j) : 0;
      if (g >= len - at) break;
      at += g;
      const std::int64_t e = c * 65536 + at;
      out.push_back({e / k, pos[static_cast<std::size_t>(e % k)]});
      ++at;
    }
  }
  return out;
}

TEST(Flips, FollowsTheDocumentedAlgorithm) {
  // Thresholds agree with long double evaluations to within one part in 2^50, plus one unit
  // for the reference's truncation.
  for (double ber : {1e-9, 1e-5, 1e-3, 0.1, 0.5}) {
    const FlipThresholds t = flip_thresholds(ber);
    const long double far = q_power(ber, 65536.0L) * 18446744073709551616.0L;
    EXPECT_NEAR(static_cast<double>(t.far), static_cast<double>(far), 1e-12 * static_cast<double>(far) + 1) << ber;
    for (int j = 0; j < 16; ++j) {
      const long double a = q_power(ber, std::ldexp(1.0L, j));
      const double want = static_cast<double>(a / (1 + a) * 18446744073709551616.0L);
      EXPECT_NEAR(static_cast<double>(t.bit[j]), want, 0x1p-50 * want + 1) << ber << " " << j;
    }
  }
  for (double ber : {1e-4, 3e-2}) {
    const FlipSpec spec{20000, 16, 0x8f0f, ber};
    for (std::uint64_t t = 0; t < 5; ++t) EXPECT_EQ(sample_flips(17, t, spec), documented_sampler(17, t, spec)) << ber << " " << t;
  }
}

TEST(Flips, BitMaskRestrictsPositions) {
  const std::uint64_t mask = parse_bit_positions("sign,exponent", DType::f32());
  ASSERT_EQ(mask, 0xff800000ull);
  const FlipSpec spec{30000, 32, mask, 2e-3};
  for (std::uint64_t t = 0; t < 20; ++t)
    for (const FlipSite& s : sample_flips(1, t, spec)) ASSERT_TRUE((mask >> s.bit) & 1) << s.bit;
  check_binomial_counts(spec, 1000, 6);  // E = 30000 * 9
  // Mask bits beyond the word do not count.
  const FlipSpec wide{100, 8, ~0ull, 1.0};
  EXPECT_EQ(sample_flips(1, 0, wide).size(), 800u);
}

TEST(Flips, EdgeCases) {
  EXPECT_TRUE(sample_flips(1, 0, {1000, 32, ~0ull, 0.0}).empty());
  EXPECT_TRUE(sample_flips(1, 0, {0, 32, ~0ull, 0.5}).empty());
  EXPECT_TRUE(sample_flips(1, 0, {1000, 32, 0, 0.5}).empty());
  const auto all = sample_flips(1, 0, {3, 16, 0x8001, 1.0});
  EXPECT_EQ(all, (std::vector<FlipSite>{{0, 0}, {0, 15}, {1, 0}, {1, 15}, {2, 0}, {2, 15}}));
  EXPECT_THROW(sample_flips(1, 0, {10, 32, ~0ull, -0.1}), Error);
  EXPECT_THROW(sample_flips(1, 0, {10, 32, ~0ull, 1.5}), Error);
  EXPECT_THROW(sample_flips(1, 0, {10, 32, ~0ull, NAN}), Error);
  EXPECT_THROW(sample_flips(1, 0, {10, 0, ~0ull, 0.1}), Error);
  EXPECT_THROW(sample_flips(1, 0, {10, 65, ~0ull, 0.1}), Error);
  EXPECT_THROW(sample_flips(1, 0, {-1, 32, ~0ull, 0.1}), Error);
  EXPECT_THROW(sample_flips(1, 0, {std::int64_t{1} << 58, 32, ~0ull, 1e-12}), Error);
  // A tiny ber over a huge buffer: no overflow, about E * ber flips.
  const auto few = sample_flips(1, 0, {std::int64_t{1} << 30, 32, ~0ull, 1e-300});
  EXPECT_TRUE(few.empty());
}

TEST(Flips, ApplyFlipStuckAtOnLittleEndianWords) {
  const float x[3] = {1.0f, -2.0f, 0.5f};
  StorageBuffer buf = encode_storage(x, 3, DType::f16());  // 0x3c00, 0xc000, 0x3800
  const std::vector<std::uint8_t> clean = buf.bytes;
  const std::vector<FlipSite> sites = {{0, 15}, {1, 0}, {2, 10}};
  apply_faults(buf.bytes.data(), 2, sites, FaultModel::flip);
  std::vector<float> y(3);
  decode_words(buf.bytes.data(), buf.dtype, 3, y.data());
  EXPECT_EQ(y[0], -1.0f);            // sign bit
  EXPECT_EQ(y[1], -2.0f - 0x1p-9f);  // mantissa lsb
  EXPECT_EQ(y[2], 1.0f);             // exponent lsb: 2^-1 -> 2^0
  apply_faults(buf.bytes.data(), 2, sites, FaultModel::flip);
  EXPECT_EQ(buf.bytes, clean);
  // stuck0 on zero bits and stuck1 on one bits change nothing; the opposite ones do.
  apply_faults(buf.bytes.data(), 2, {{0, 0}, {1, 3}}, FaultModel::stuck0);
  EXPECT_EQ(buf.bytes, clean);
  apply_faults(buf.bytes.data(), 2, {{0, 13}, {1, 15}}, FaultModel::stuck1);
  EXPECT_EQ(buf.bytes, clean);
  apply_faults(buf.bytes.data(), 2, {{0, 13}}, FaultModel::stuck0);  // 0x3c00 -> 0x1c00
  EXPECT_EQ(buf.bytes[1], 0x1c);
  apply_faults(buf.bytes.data(), 2, {{0, 0}}, FaultModel::stuck1);
  EXPECT_EQ(buf.bytes[0], 0x01);
  // Injection refuses a spec whose words do not fit the buffer (3 f16 words = 6 bytes).
  Tensor words({6}, DType::u8());
  EXPECT_THROW(cpu_backend().inject_faults(words, 1, 0, FlipSpec{4, 16, ~0ull, 0.5}, FaultModel::flip), Error);
  EXPECT_NO_THROW(cpu_backend().inject_faults(words, 1, 0, FlipSpec{3, 16, ~0ull, 0.5}, FaultModel::flip));
  // A raw f32 buffer: bit 31 lives in the fourth byte.
  std::uint8_t raw[8] = {};
  apply_faults(raw, 4, {{1, 31}, {0, 8}}, FaultModel::flip);
  EXPECT_EQ(raw[7], 0x80);
  EXPECT_EQ(raw[1], 0x01);
}

TEST(Flips, SampledSitesApplyToStorage) {
  std::vector<float> w(4096, 0.25f);
  StorageBuffer buf = encode_storage(w.data(), 4096, DType::fixed(2, 5));
  const auto sites = sample_flips(3, 1, {buf.words(), 8, ~0ull, 0.01});
  const std::vector<std::uint8_t> clean = buf.bytes;
  apply_faults(buf.bytes.data(), 1, sites, FaultModel::flip);
  std::int64_t changed_bits = 0;
  for (std::size_t i = 0; i < clean.size(); ++i)
    for (std::uint8_t d = clean[i] ^ buf.bytes[i]; d; d &= d - 1) ++changed_bits;
  EXPECT_EQ(changed_bits, static_cast<std::int64_t>(sites.size()));
}

TEST(Flips, ParseFaultModel) {
  EXPECT_EQ(parse_fault_model("flip"), FaultModel::flip);
  EXPECT_EQ(parse_fault_model("stuck0"), FaultModel::stuck0);
  EXPECT_EQ(parse_fault_model("stuck1"), FaultModel::stuck1);
  for (FaultModel m : {FaultModel::flip, FaultModel::stuck0, FaultModel::stuck1})
    EXPECT_EQ(parse_fault_model(fault_model_name(m)), m);
  try {
    parse_fault_model("stuck");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid: flip stuck0 stuck1"), std::string::npos) << e.what();
  }
}

TEST(Flips, ParseBitPositions) {
  EXPECT_EQ(parse_bit_positions("all", DType::f32()), 0xffffffffull);
  EXPECT_EQ(parse_bit_positions("mantissa", DType::f32()), 0x007fffffull);
  EXPECT_EQ(parse_bit_positions("exponent", DType::f16()), 0x7c00ull);
  EXPECT_EQ(parse_bit_positions("sign", DType::f16()), 0x8000ull);
  EXPECT_EQ(parse_bit_positions("mantissa", DType::bf16()), 0x7full);
  EXPECT_EQ(parse_bit_positions("exponent", DType::bf16()), 0x7f80ull);
  EXPECT_EQ(parse_bit_positions("0-7,15", DType::f16()), 0x80ffull);
  EXPECT_EQ(parse_bit_positions(" 3 , 5-6", DType::f32()), 0x68ull);
  EXPECT_EQ(parse_bit_positions("all", DType::fixed(2, 5)), 0xffull);
  EXPECT_EQ(parse_bit_positions("sign", DType::fixed(2, 5)), 0x80ull);
  EXPECT_EQ(parse_bit_positions("integer", DType::fixed(2, 5)), 0x60ull);
  EXPECT_EQ(parse_bit_positions("fraction", DType::fixed(2, 5)), 0x1full);
}

TEST(Flips, ParseBitPositionsRejectsBadSpecs) {
  for (const char* bad : {"", "32", "7-3", "exponent,", "x", "1,,2", "-1", "0-", "sign exponent"})
    EXPECT_THROW(parse_bit_positions(bad, DType::f32()), Error) << bad;
  EXPECT_THROW(parse_bit_positions("exponent", DType::fixed(2, 5)), Error);
  EXPECT_THROW(parse_bit_positions("8", DType::fixed(2, 5)), Error);
  EXPECT_THROW(parse_bit_positions("integer", DType::fixed(0, 7)), Error);
  try {
    parse_bit_positions("exponent", DType::fixed(2, 5));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("all sign integer fraction"), std::string::npos) << e.what();
  }
}

TEST(Flips, SamplingSpeed) {
  const FlipSpec spec{270000, 32, ~0ull, 1e-5};
  std::size_t flips = 0;
  const int reps = 200;
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < reps; ++t) flips += sample_flips(9, static_cast<std::uint64_t>(t), spec).size();
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::printf("sample_flips: 270000 f32 words at ber 1e-5: %.1f us per trial, %.1f flips on average\n", us,
              static_cast<double>(flips) / reps);
}

}  // namespace
}  // namespace safnet
