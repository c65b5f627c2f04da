// Bit-fault sampling by chunked geometric skips (algorithm in flips.h), fault application and
// the parsing of fault models and bit positions.
#include "host/faults/flips.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "host/check.h"

namespace safnet {

namespace {

// Eligible bits per word must keep E * chunk stride inside Philox's 64-bit offset.
constexpr std::int64_t kMaxEligibleBits = std::int64_t{1} << 58;

std::uint64_t word_mask(int word_bits) {
  return word_bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << word_bits) - 1;
}

// round(p * 2^64), saturated to 2^64 - 1, for p in [0, 1).
std::uint64_t scaled(double p) {
  const double v = std::round(std::ldexp(p, 64));
  return v >= 0x1p64 ? ~std::uint64_t{0} : static_cast<std::uint64_t>(v);
}

// round((1 - c) * 2^64), saturated, for c in [0, 1]: near p = 1 the complement c carries the
// precision that p itself would lose.
std::uint64_t scaled_complement(double c) {
  const auto r = static_cast<std::uint64_t>(std::round(std::ldexp(c, 64)));
  return c >= 1 ? 0 : r == 0 ? ~std::uint64_t{0} : std::uint64_t{0} - r;
}

// round((1/2 + d) * 2^64) for d in [-1/2, 0]: near 1/2 the offset d carries the precision.
std::uint64_t scaled_half_plus(double d) {
  const double v = std::round(std::ldexp(-d, 64));  // in [0, 2^63]
  return (std::uint64_t{1} << 63) - static_cast<std::uint64_t>(v);
}

}  // namespace

FlipThresholds flip_thresholds(double ber) {
  if (!(ber > 0 && ber < 1)) fail("host/faults/flips.cpp: flip_thresholds: ber ", ber, " outside (0, 1)");
  const double log_q = std::log1p(-ber);
  FlipThresholds t{};
  // far = q^(2^16); from its complement -expm1 when it is near 1.
  const double x_far = std::ldexp(log_q, kFlipChunkLog2);
  t.far = x_far < -1 ? scaled(std::exp(x_far)) : scaled_complement(-std::expm1(x_far));
  // bit[j] = a / (1 + a) with a = q^(2^j); near 1/2 from its offset em / (2 (2 + em)) to 1/2,
  // em = a - 1 = expm1(2^j log q), which keeps tiny ber from vanishing in the rounding of 1/2.
  for (int j = 0; j < kFlipChunkLog2; ++j) {
    const double x = std::ldexp(log_q, j);
    if (x < -1) {
      const double a = std::exp(x);
      t.bit[j] = scaled(a / (1 + a));
    } else {
      const double em = std::expm1(x);
      t.bit[j] = scaled_half_plus(em / (2 * (2 + em)));
    }
  }
  return t;
}

std::vector<FlipSite> sample_flips(std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec) {
  if (spec.words < 0) fail("host/faults/flips.cpp: sample_flips: negative word count ", spec.words);
  if (spec.word_bits < 1 || spec.word_bits > 64)
    fail("host/faults/flips.cpp: sample_flips: word_bits ", spec.word_bits, " outside 1..64");
  if (!(spec.ber >= 0 && spec.ber <= 1))
    fail("host/faults/flips.cpp: sample_flips: ber ", spec.ber, " outside [0, 1]");
  const std::uint64_t mask = spec.bit_mask & word_mask(spec.word_bits);
  int positions[64];
  int k = 0;
  for (int b = 0; b < spec.word_bits; ++b)
    if ((mask >> b) & 1) positions[k++] = b;
  std::vector<FlipSite> sites;
  if (spec.ber == 0 || k == 0 || spec.words == 0) return sites;
  if (spec.words > kMaxEligibleBits / k)
    fail("host/faults/flips.cpp: sample_flips: ", spec.words, " words of ", k,
         " eligible bits exceed the 2^58 bits a trial can address");
  const std::int64_t total = spec.words * k;
  if (spec.ber == 1) {
    sites.reserve(static_cast<std::size_t>(total));
    for (std::int64_t w = 0; w < spec.words; ++w)
      for (int j = 0; j < k; ++j) sites.push_back({w, positions[j]});
    return sites;
  }
  const FlipThresholds t = flip_thresholds(spec.ber);
  const std::int64_t chunks = (total + kFlipChunkBits - 1) / kFlipChunkBits;
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t base = c * kFlipChunkBits;
    const std::int64_t len = std::min(kFlipChunkBits, total - base);
    sample_flip_chunk(seed, trial, c, len, t, [&](std::int64_t i) {
      const std::int64_t e = base + i;
      sites.push_back({e / k, positions[e % k]});
    });
  }
  return sites;
}

void apply_faults(std::uint8_t* words_bytes, int word_bytes, const std::vector<FlipSite>& sites, FaultModel model) {
  if (word_bytes < 1 || word_bytes > 8)
    fail("host/faults/flips.cpp: apply_faults: word size ", word_bytes, " bytes outside 1..8");
  if (!sites.empty() && words_bytes == nullptr) fail("host/faults/flips.cpp: apply_faults: null buffer");
  for (const FlipSite& s : sites) {
    if (s.word < 0 || s.bit < 0 || s.bit >= 8 * word_bytes)
      fail("host/faults/flips.cpp: apply_faults: site (word ", s.word, ", bit ", s.bit, ") outside words of ",
           8 * word_bytes, " bits");
    std::uint8_t& byte = words_bytes[s.word * word_bytes + s.bit / 8];
    const auto m = static_cast<std::uint8_t>(1u << (s.bit % 8));
    switch (model) {
      case FaultModel::flip: byte ^= m; break;
      case FaultModel::stuck0: byte &= static_cast<std::uint8_t>(~m); break;
      case FaultModel::stuck1: byte |= m; break;
    }
  }
}

FaultModel parse_fault_model(const std::string& name) {
  if (name == "flip") return FaultModel::flip;
  if (name == "stuck0") return FaultModel::stuck0;
  if (name == "stuck1") return FaultModel::stuck1;
  fail("unknown fault model '", name, "' (valid: flip stuck0 stuck1)");
}

const char* fault_model_name(FaultModel model) {
  switch (model) {
    case FaultModel::flip: return "flip";
    case FaultModel::stuck0: return "stuck0";
    case FaultModel::stuck1: return "stuck1";
  }
  return "?";
}

namespace {

std::uint64_t bit_range(int lo, int hi) {  // bits lo..hi inclusive
  return word_mask(hi + 1) & ~word_mask(lo);
}

// Field masks of the storage formats; 0 when the dtype has no such field.
std::uint64_t field_mask(const std::string& name, DType dtype) {
  const int bits = dtype.bits();
  if (name == "all") return word_mask(bits);
  int exp_lo = 0, exp_hi = 0;  // f32/f16/bf16 exponent field
  switch (dtype.kind) {
    case DType::Kind::f32: exp_lo = 23, exp_hi = 30; break;
    case DType::Kind::f16: exp_lo = 10, exp_hi = 14; break;
    case DType::Kind::bf16: exp_lo = 7, exp_hi = 14; break;
    case DType::Kind::fixed:
      if (name == "sign") return bit_range(7, 7);
      if (name == "integer" && dtype.m > 0) return bit_range(dtype.n, 6);
      if (name == "fraction" && dtype.n > 0) return bit_range(0, dtype.n - 1);
      return 0;
    default: return 0;
  }
  if (name == "sign") return bit_range(bits - 1, bits - 1);
  if (name == "exponent") return bit_range(exp_lo, exp_hi);
  if (name == "mantissa") return bit_range(0, exp_lo - 1);
  return 0;
}

std::string valid_bit_names(DType dtype) {
  switch (dtype.kind) {
    case DType::Kind::f32:
    case DType::Kind::f16:
    case DType::Kind::bf16: return "all sign exponent mantissa";
    case DType::Kind::fixed:
      return std::string("all sign") + (dtype.m > 0 ? " integer" : "") + (dtype.n > 0 ? " fraction" : "");
    default: return "all";
  }
}

bool parse_bit(const std::string& s, int bits, int& out) {
  if (s.empty() || s.size() > 2) return false;
  int v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  if (v >= bits) return false;
  out = v;
  return true;
}

}  // namespace

std::uint64_t parse_bit_positions(const std::string& spec, DType dtype) {
  const int bits = dtype.bits();
  const std::string help = " (valid: " + valid_bit_names(dtype) + ", bit numbers 0-" + std::to_string(bits - 1) +
                           " and ranges like 0-7, comma-separated)";
  if (spec.empty()) fail("empty bit positions for ", dtype.name(), help);
  std::uint64_t mask = 0;
  std::istringstream in(spec);
  std::string tok;
  while (std::getline(in, tok, ',')) {
    const auto a = tok.find_first_not_of(' ');
    const auto b = tok.find_last_not_of(' ');
    tok = a == std::string::npos ? std::string() : tok.substr(a, b - a + 1);
    if (const std::uint64_t f = field_mask(tok, dtype)) {
      mask |= f;
      continue;
    }
    const auto dash = tok.find('-');
    int lo = 0, hi = 0;
    const bool ok = dash == std::string::npos
                        ? parse_bit(tok, bits, lo) && parse_bit(tok, bits, hi)
                        : parse_bit(tok.substr(0, dash), bits, lo) && parse_bit(tok.substr(dash + 1), bits, hi) && lo <= hi;
    if (!ok) fail("bad bit position '", tok, "' in '", spec, "' for ", dtype.name(), help);
    mask |= bit_range(lo, hi);
  }
  if (spec.back() == ',') fail("bad bit positions '", spec, "' for ", dtype.name(), help);
  return mask;
}

}  // namespace safnet
