// Bit-flip sampling and fault application in device memory: the same sample as the CPU's
// sample_flips() (host/faults/flips.h), chunk by chunk, one thread per chunk.
//
// Use: plan = make_flip_plan(...); counts (chunks + 1 int64) <- flip_count(plan);
// then flip_write(plan, counts, sites, capacity) and apply_faults(..., sites, counts + chunks, ...).
// The total number of sites is counts[flip_chunks(plan)] (device memory): copy it back only when
// the host needs it (to size `sites`); apply_faults reads it on the device.
#pragma once
#include "cuda/hd.h"
#include <cstdint>

#include "cuda/flip_sampler.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// One trial's sampling problem: eligible index e = word * k + j names bit positions[j] of `word`.
struct FlipPlan {
  enum class Mode : std::uint8_t { none, all, sample };  // ber = 0, ber = 1, 0 < ber < 1
  std::uint64_t seed = 0, trial = 0;
  std::int64_t words = 0;
  int k = 0;                     // eligible bits per word
  std::int8_t positions[64] = {};
  Mode mode = Mode::none;
  FlipThresholds t{};            // used when mode == sample
  // When set, the trial index is read here on the device instead of `trial`: one captured graph
  // then serves every trial, its index written before each replay (set_trial).
  const std::uint64_t* trial_at = nullptr;
};

// Checks the arguments as sample_flips() does. `t` must be flip_thresholds(ber) when 0 < ber < 1
// (computed on the host; it is ignored otherwise and may be null).
FlipPlan make_flip_plan(std::uint64_t seed, std::uint64_t trial, std::int64_t words, int word_bits,
                        std::uint64_t bit_mask, double ber, const FlipThresholds* t);
std::int64_t flip_chunks(const FlipPlan& plan);

// counts (chunks + 1): the exclusive prefix sum of the chunks' flip counts; counts[chunks] is the
// total number of sites.
void flip_count(const FlipPlan& plan, std::int64_t* counts, cudaStream_t s);
// sites (capacity): the trial's flip sites sorted by (word, bit), as sample_flips() returns them;
// sites past `capacity` are dropped (compare the total with capacity to detect that).
void flip_write(const FlipPlan& plan, const std::int64_t* counts, FlipSite* sites, std::int64_t capacity,
                cudaStream_t s);
// *at = trial, queued on s: the index a plan with trial_at == at reads, carried by the launch's
// arguments, so nothing is copied from the host.
void set_trial(std::uint64_t* at, std::uint64_t trial, cudaStream_t s);
// Applies min(*count, capacity) sorted sites (count in device memory) to `words` little-endian
// words of word_bytes bytes: XOR for flip, clear for stuck0, set for stuck1. Sites outside the
// buffer are skipped. One thread owns each touched byte, so no atomics are needed.
void apply_faults(std::uint8_t* bytes, std::int64_t words, int word_bytes, const FlipSite* sites,
                  const std::int64_t* count, std::int64_t capacity, FaultModel model, cudaStream_t s);

}  // namespace safnet::cuda
