// The per-chunk bit-flip sampler shared by the CPU and the GPU (algorithm in host/faults/flips.h):
// chunk constants, the integer thresholds, the flip site and fault model types, and the sampler.
#pragma once
#include <cstdint>

#include "cuda/hd.h"
#include "cuda/philox.h"

namespace safnet {

inline constexpr int kFlipChunkLog2 = 16;
inline constexpr std::int64_t kFlipChunkBits = std::int64_t{1} << kFlipChunkLog2;
inline constexpr std::uint64_t kFlipChunkStride = std::uint64_t{1} << 22;  // 32-bit outputs

struct FlipSite {
  std::int64_t word;
  int bit;  // bit 0 = least significant bit of the word
  friend bool operator==(const FlipSite&, const FlipSite&) = default;
};

// Step 4's thresholds: P(G >= 2^16) * 2^64 and P(digit j = 1) * 2^64.
struct FlipThresholds {
  std::uint64_t far;
  std::uint64_t bit[kFlipChunkLog2];
};

enum class FaultModel { flip, stuck0, stuck1 };

// Steps 3-4 for one chunk: calls emit(i) for each flipped index i (0 <= i < len, increasing).
template <typename Emit>
SAFNET_HD void sample_flip_chunk(std::uint64_t seed, std::uint64_t trial, std::int64_t chunk, std::int64_t len,
                                 const FlipThresholds& t, Emit&& emit) {
  Philox rng(seed, trial, static_cast<std::uint64_t>(chunk) * kFlipChunkStride);
  std::int64_t pos = 0;
  while (pos < len) {
    if (rng.bernoulli(t.far)) return;
    std::int64_t gap = 0;
    for (int j = 0; j < kFlipChunkLog2; ++j)
      if (rng.bernoulli(t.bit[j])) gap |= std::int64_t{1} << j;
    if (gap >= len - pos) return;
    pos += gap;
    emit(pos);
    ++pos;
  }
}

}  // namespace safnet
