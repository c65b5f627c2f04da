// Keyed random streams for shuffling and augmentation, built on the splitmix64 Rng.
#pragma once
#include <cstdint>
#include <initializer_list>

#include "host/rng.h"

namespace safnet {

// A stream key from (seed, a, b, c): each word goes through a full splitmix64 round so nearby
// keys (epoch e and e+1, image i and i+1) give unrelated streams.
inline std::uint64_t rng_key(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0) {
  std::uint64_t k = Rng(seed).next();
  for (std::uint64_t w : {a, b, c}) k = Rng(k ^ w).next();
  return k;
}

// Uniform integer in [0, n) by the multiply-shift map; the bias is at most n / 2^64.
inline std::uint64_t rng_below(Rng& r, std::uint64_t n) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(r.next()) * n) >> 64);
}

}  // namespace safnet
