// Philox4x32-10 counter-based generator, bit-identical to cuRAND's curandStatePhilox4_32_10_t.
// `Philox(seed, subsequence, offset)` then `next()` returns exactly what
// `curand_init(seed, subsequence, offset, &s)` then `curand(&s)` returns on the GPU, so host and
// device draw the same numbers for the same (seed, subsequence, offset).
#pragma once
#include <cstdint>

#include "cuda/hd.h"

namespace safnet {

struct Philox4 {
  std::uint32_t x, y, z, w;
};

// The Philox4x32 bijection with 10 rounds (Salmon et al., SC'11): 128-bit counter, 64-bit key.
SAFNET_HD Philox4 philox4x32_10(Philox4 ctr, std::uint32_t key_lo, std::uint32_t key_hi) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * ctr.x;
    const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * ctr.z;
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = Philox4{hi1 ^ ctr.y ^ key_lo, lo1, hi0 ^ ctr.w ^ key_hi, lo0};
    key_lo += kWeyl0;
    key_hi += kWeyl1;
  }
  return ctr;
}

// One stream position of cuRAND's Philox: the counter of the current 4-word block, that block's
// output, and which of its words comes next. The counter's high 64 bits (z, w) hold the
// subsequence and its low 64 bits (x, y) the block index within it, as in cuRAND.
struct Philox {
  Philox4 ctr{0, 0, 0, 0};
  Philox4 out{0, 0, 0, 0};
  std::uint32_t key_lo = 0, key_hi = 0;
  std::uint32_t lane = 0;  // index in `out` of the next word returned, 0..3

  // curand_init(seed, subsequence, offset): skip 2^66 * subsequence + offset 32-bit outputs.
  SAFNET_HD Philox(std::uint64_t seed, std::uint64_t subsequence, std::uint64_t offset = 0)
      : key_lo(static_cast<std::uint32_t>(seed)), key_hi(static_cast<std::uint32_t>(seed >> 32)) {
    add_high(subsequence);
    skip(offset);
  }

  // curand(): 32 random bits; words of a block are used in the order x, y, z, w.
  SAFNET_HD std::uint32_t next() {
    const std::uint32_t r = lane == 0 ? out.x : lane == 1 ? out.y : lane == 2 ? out.z : out.w;
    if (++lane == 4) {
      increment();
      refill();
      lane = 0;
    }
    return r;
  }

  // 64 random bits: the first word is the high half.
  SAFNET_HD std::uint64_t next64() {
    const std::uint64_t hi = next();
    return (hi << 32) | next();
  }

  // True with probability threshold / 2^64: next64() < threshold, but the second word is drawn
  // only when the first one equals the threshold's high half (same outcome, half the draws).
  SAFNET_HD bool bernoulli(std::uint64_t threshold) {
    const std::uint32_t hi = next(), t_hi = static_cast<std::uint32_t>(threshold >> 32);
    if (hi != t_hi) return hi < t_hi;
    return next() < static_cast<std::uint32_t>(threshold);
  }

  // Uniform on the 2^53 points k / 2^53, k = 1 .. 2^53, i.e. in (0, 1]: two words w0, w1 (in
  // draw order), m = ((w0 << 32) | w1) >> 11, result (m + 1) * 2^-53. Every point is exactly
  // representable, so the grid is exactly uniform; 0 is excluded so log(u) is finite.
  SAFNET_HD double uniform53() {
    const std::uint64_t m = next64() >> 11;
    return static_cast<double>(m + 1) * 0x1p-53;
  }

  // skipahead(n): advance by n 32-bit outputs.
  SAFNET_HD void skip(std::uint64_t n) {
    lane += static_cast<std::uint32_t>(n & 3);
    n /= 4;
    if (lane > 3) {
      n += 1;
      lane -= 4;
    }
    add_low(n);
    refill();
  }

 private:
  SAFNET_HD void refill() { out = philox4x32_10(ctr, key_lo, key_hi); }

  // Adds one to the 128-bit counter.
  SAFNET_HD void increment() {
    if (++ctr.x) return;
    if (++ctr.y) return;
    if (++ctr.z) return;
    ++ctr.w;
  }

  // Adds n to the counter's low 64 bits with cuRAND's carry rule (Philox_State_Incr), including
  // its carry test on y, so that every (seed, subsequence, offset) lands where cuRAND's does.
  SAFNET_HD void add_low(std::uint64_t n) {
    const std::uint32_t nlo = static_cast<std::uint32_t>(n);
    std::uint32_t nhi = static_cast<std::uint32_t>(n >> 32);
    ctr.x += nlo;
    if (ctr.x < nlo) ++nhi;
    ctr.y += nhi;
    if (nhi <= ctr.y) return;
    if (++ctr.z) return;
    ++ctr.w;
  }

  // Adds n to the counter's high 64 bits, dropping the carry out of w (Philox_State_Incr_hi).
  SAFNET_HD void add_high(std::uint64_t n) {
    const std::uint32_t nlo = static_cast<std::uint32_t>(n);
    std::uint32_t nhi = static_cast<std::uint32_t>(n >> 32);
    ctr.z += nlo;
    if (ctr.z < nlo) ++nhi;
    ctr.w += nhi;
  }
};

}  // namespace safnet
