// Fault trials in flight on a GPU: several trials side by side, one per lane (CUDA stream), each a
// recorded graph replayed per trial, so that a trial costs one small launch, one graph launch, and
// its metrics back; the host waits once per group of trials.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "app/evaluate.h"
#include "app/stored_model.h"
#include "host/faults/flips.h"
#include "models/checkpoint.h"

namespace safnet {

// One trial of a group: its cell, index and fault spec, the number of sites the host's sampler
// gives it (what the device must make room for), and the golden-prefix position it starts at.
struct FlightTrial {
  DType dtype;
  double ber = 0;
  std::int64_t trial = 0;
  FlipSpec spec;
  std::int64_t sites = 0;
  std::shared_ptr<const PrefixCache> cache;  // null: the whole network
  std::size_t k = 0;
};

// The slots of the trials in flight. A slot owns a lane, its stored words per dtype, an evaluator
// (the test split shared by all) and its metric sums; per (dtype, BER, prefix position) it records
// once: restore the clean words, sample and apply the trial's flips on the device (the trial index
// read from device memory, written by a one-thread launch before each replay), evaluate every
// batch, copy the 32-byte metric sums into pinned host memory. Only on a backend with lanes.
class TrialSlots {
 public:
  // Builds one slot; resize() adds the others. The split on the device is `share`'s when given (an
  // Evaluator prepared for `data`).
  TrialSlots(const Checkpoint& ck, const std::vector<TargetSlice>& slices, ModelConfig model, int batch,
             NanLogits rule, std::uint64_t seed, FaultModel fault_model, Backend& backend, const EvalSet& data,
             const Evaluator* share = nullptr);
  ~TrialSlots();
  int size() const { return static_cast<int>(slots_.size()); }
  void resize(int slots);
  // Queues the trials of `group` (at most size()) side by side, trial i in slot i, after what lane
  // 0 issued so far, and returns without waiting: the host may prepare the next group meanwhile.
  // One group at a time.
  void launch(const std::vector<FlightTrial>& group);
  // Waits once for the group launched last; its metrics, in order (none when none is in flight).
  std::vector<Metrics> collect();
  // Device memory one slot takes (its plans' activations, stored words and metric sums).
  std::size_t slot_bytes() const { return slot_bytes_; }

 private:
  struct Recorded {
    std::unique_ptr<Backend::Recording> graph;  // null where the backend cannot record: run eagerly
    std::weak_ptr<const PrefixCache> cache;     // the cache it reads, expired once dropped
    std::int64_t capacity = 0;
    Tensor scratch;
  };
  struct Slot;
  // The work of one trial in `slot`, as recorded.
  void issue(Slot& slot, StoredModel& sm, const FlightTrial& t, Recorded& r);
  Recorded& recorded(int lane, const FlightTrial& t);

  ModelConfig config_;
  int batch_;
  NanLogits rule_;
  const Checkpoint& ck_;
  const std::vector<TargetSlice>& slices_;
  std::uint64_t seed_;
  FaultModel model_;
  Backend& backend_;
  const EvalSet& data_;
  const Evaluator* share_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::size_t slot_bytes_ = 0;
  std::size_t in_flight_ = 0;  // trials of the group launched and not yet collected
};

// The trials to keep in flight: `wanted` when > 0; otherwise as many slots of `slot_bytes` as half
// of `free_bytes` holds, at least 1 and at most 8. Never more than `pending`, never less than 1.
int trials_in_flight(int wanted, std::size_t slot_bytes, std::size_t free_bytes, std::int64_t pending);

}  // namespace safnet
