// Bit-fault sampling: exact i.i.d. Bernoulli(ber) flips over the stored bits of one trial, and
// applying them (flip, stuck-at-0, stuck-at-1) to a storage buffer.
//
// The sample of a trial is defined by this algorithm, which a GPU sampler must reproduce exactly:
//
// 1. Eligible bits. The positions p_0 < ... < p_{k-1} set in bit_mask & (2^word_bits - 1) are
//    eligible in every word. Eligible index e = word * k + j names bit p_j of `word`; there are
//    E = words * k of them. ber = 0 or E = 0: no site. ber = 1: every eligible bit.
// 2. Chunks. The eligible indices are cut into chunks of kFlipChunkBits = 2^16; chunk c covers
//    [c * 2^16, min((c + 1) * 2^16, E)) and draws only from
//    Philox(seed, trial, c * kFlipChunkStride) (cuda/philox.h; curand_init(seed, trial, offset)).
//    A chunk consumes at most 34 * (2^16 + 1) < kFlipChunkStride = 2^22 words, so chunks never
//    share random numbers and can be sampled in parallel, in any order.
// 3. Geometric skips. In a chunk of `len` bits, from pos = 0, while pos < len: draw the gap G (the number
//    of unflipped bits before the next flip, P(G >= g) = q^g, q = 1 - ber); if G >= len - pos
//    stop, else flip bit pos + G and set pos += G + 1.
// 4. The gap from its binary digits. The binary digits of a geometric variable are independent:
//    P(G = g | G < 2^16) is proportional to q^g = prod_j (q^(2^j))^(g_j), so digit j is
//    Bernoulli(q^(2^j) / (1 + q^(2^j))), and P(G >= 2^16) = q^(2^16). One gap is: if
//    bernoulli(far), G >= 2^16 and the chunk stops; else G = sum over j = 0..15 of
//    2^j * bernoulli(bit[j]), the 16 draws in increasing j. Philox::bernoulli(T) draws a word w0;
//    if w0 != T >> 32 it returns w0 < T >> 32, else it draws w1 and returns w1 < (T mod 2^32).
//    far and bit[j] are 64-bit thresholds (probability * 2^64) from flip_thresholds(ber), computed
//    once on the host with log1p/expm1 so tiny ber keeps its precision. Passing these integers to
//    the GPU makes the random path integer-only: CPU and GPU flip the same bits, bit for bit,
//    whatever their libm. The distribution is exact up to the 2^-64 resolution of the thresholds.
//
// Cost per trial: one Philox block per chunk plus about 17 words per flip: O(E / 2^16 + flips).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/flip_sampler.h"
#include "host/dtype.h"

namespace safnet {

// FlipSite, FaultModel, FlipThresholds, the chunk constants and sample_flip_chunk live in
// cuda/flip_sampler.h, so the GPU sampler runs the same code.

struct FlipSpec {
  std::int64_t words = 0;
  int word_bits = 32;                    // 1..64
  std::uint64_t bit_mask = ~std::uint64_t{0};  // eligible positions; only the low word_bits count
  double ber = 0;                        // in [0, 1]
};

FlipThresholds flip_thresholds(double ber);  // ber in (0, 1)

// Flip sites of one trial, sorted by (word, bit). Depends only on (seed, trial, spec).
std::vector<FlipSite> sample_flips(std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec);

// Applies the sites to words of word_bytes bytes each, little-endian (XOR for flip; force 0/1
// for stuck-at). Applying `flip` twice restores the buffer. The caller guarantees that every
// site's word lies in the buffer (Backend::inject_faults checks the spec against it).
void apply_faults(std::uint8_t* words_bytes, int word_bytes, const std::vector<FlipSite>& sites, FaultModel model);

FaultModel parse_fault_model(const std::string& name);  // "flip" "stuck0" "stuck1"
const char* fault_model_name(FaultModel model);

// A comma-separated list of bit numbers ("15"), ranges ("0-7") and field names, as a mask:
// "all"; f32/f16/bf16: "sign", "exponent", "mantissa"; fixed(m,n): "sign" (bit 7), "integer"
// (bits n..6), "fraction" (bits 0..n-1). Bits must lie inside the dtype's word.
std::uint64_t parse_bit_positions(const std::string& spec, DType dtype);

}  // namespace safnet
