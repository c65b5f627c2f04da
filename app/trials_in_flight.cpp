// Trials in flight: slots, their recordings, and one host wait per group.
#include "app/trials_in_flight.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "host/check.h"

namespace safnet {

struct TrialSlots::Slot {
  Slot(ModelConfig model, int batch, Backend& backend, NanLogits rule) : eval(std::move(model), batch, backend, rule) {}
  Evaluator eval;
  std::map<std::string, std::unique_ptr<StoredModel>> stored;  // by dtype name
  Tensor sums, host_sums, trial;  // MetricSums on the device and in host memory; the trial index (u64)
  // By (dtype, BER, prefix cache, position).
  std::map<std::tuple<std::string, double, const PrefixCache*, std::size_t>, Recorded> recorded;
};

TrialSlots::TrialSlots(const Checkpoint& ck, const std::vector<TargetSlice>& slices, ModelConfig model, int batch,
                       NanLogits rule, std::uint64_t seed, FaultModel fault_model, Backend& backend,
                       const EvalSet& data, const Evaluator* share)
    : config_(std::move(model)), batch_(batch), rule_(rule), ck_(ck), slices_(slices), seed_(seed),
      model_(fault_model), backend_(backend), data_(data), share_(share) {
  resize(1);
  std::int64_t words = 0;
  for (const TargetSlice& t : slices) words += t.words;
  // The plans' activations, the stored and clean words (8 bytes each at most), the sums.
  slot_bytes_ = slots_[0]->eval.device_bytes() + static_cast<std::size_t>(words) * 16 + 2 * sizeof(MetricSums);
}

// The slots' memory goes back to lane 0's allocator, so no lane may still be reading it.
TrialSlots::~TrialSlots() {
  if (in_flight_ == 0) return;
  try {
    backend_.synchronize_lanes();
  } catch (...) {  // already failing: the device's error was reported where it happened
  }
}

void TrialSlots::resize(int slots) {
  SAFNET_CHECK(slots >= 1, "trials in flight: ", slots);
  backend_.use_lane(0);
  backend_.add_lanes(slots);
  while (size() < slots) {
    auto s = std::make_unique<Slot>(config_, batch_, backend_, rule_);
    SAFNET_CHECK(s->eval.prepare(data_, slots_.empty() ? share_ : &slots_[0]->eval),
                 "trials in flight need the test split whole on the device");
    s->sums = backend_.zeros({sizeof(MetricSums)}, DType::u8());
    s->host_sums = backend_.host_buffer({sizeof(MetricSums)}, DType::u8());
    s->trial = backend_.zeros({8}, DType::u8());
    slots_.push_back(std::move(s));
  }
}

void TrialSlots::issue(Slot& slot, StoredModel& sm, const FlightTrial& t, Recorded& r) {
  sm.restore();
  backend_.inject_recorded_faults(sm.words(), seed_, slot.trial, t.spec, model_, r.capacity, r.scratch);
  sm.refresh();
  slot.eval.issue(sm.params(), data_, slot.sums, t.cache.get(), t.k);
  backend_.copy_to_host_async(slot.sums, slot.host_sums);
}

TrialSlots::Recorded& TrialSlots::recorded(int lane, const FlightTrial& t) {
  Slot& slot = *slots_[static_cast<std::size_t>(lane)];
  auto& sm = slot.stored[t.dtype.name()];
  if (!sm) sm = std::make_unique<StoredModel>(ck_.params, slices_, t.dtype, backend_);
  Recorded& r = slot.recorded[{t.dtype.name(), t.ber, t.cache.get(), t.k}];
  const bool stale = t.cache && r.cache.expired();  // a cache dropped since, perhaps at the same address
  if (r.scratch.defined() && t.sites <= r.capacity && !stale) return r;
  // Room for twice the sites, so that a campaign's later trials rarely record afresh.
  r = Recorded{};
  r.capacity = std::max<std::int64_t>(1024, 2 * t.sites);
  r.cache = t.cache;
  r.scratch = backend_.zeros({static_cast<std::int64_t>(backend_.fault_scratch_bytes(t.spec, r.capacity))}, DType::u8());
  backend_.use_lane(lane);
  try {
    r.graph = backend_.record([&] { issue(slot, *sm, t, r); });
  } catch (...) {
    backend_.use_lane(0);
    throw;
  }
  backend_.use_lane(0);
  return r;
}

void TrialSlots::launch(const std::vector<FlightTrial>& group) {
  SAFNET_CHECK(group.size() <= slots_.size(), group.size(), " trials for ", slots_.size(), " slots");
  SAFNET_CHECK(in_flight_ == 0, "a group launched while ", in_flight_, " trials are in flight");
  std::vector<Recorded*> rec;
  for (std::size_t i = 0; i < group.size(); ++i) rec.push_back(&recorded(static_cast<int>(i), group[i]));
  backend_.fork_lanes();
  in_flight_ = group.size();  // from here the lanes may be reading the slots
  try {
    for (std::size_t i = 0; i < group.size(); ++i) {
      Slot& slot = *slots_[i];
      backend_.use_lane(static_cast<int>(i));
      backend_.set_trial(slot.trial, static_cast<std::uint64_t>(group[i].trial));
      if (rec[i]->graph)
        rec[i]->graph->replay();
      else
        issue(slot, *slot.stored[group[i].dtype.name()], group[i], *rec[i]);
    }
  } catch (...) {
    backend_.use_lane(0);
    throw;
  }
  backend_.use_lane(0);
}

std::vector<Metrics> TrialSlots::collect() {
  if (in_flight_ == 0) return {};
  backend_.synchronize_lanes();
  std::vector<Metrics> out;
  const std::size_t n = std::exchange(in_flight_, 0);
  for (std::size_t i = 0; i < n; ++i) {
    MetricSums s;
    std::memcpy(&s, slots_[i]->host_sums.raw(), sizeof s);
    out.push_back(metrics_from(s, data_.size()));
  }
  return out;
}

int trials_in_flight(int wanted, std::size_t slot_bytes, std::size_t free_bytes, std::int64_t pending) {
  std::int64_t k = wanted;
  if (k <= 0) k = std::clamp<std::int64_t>(static_cast<std::int64_t>(free_bytes / 2 / std::max<std::size_t>(1, slot_bytes)), 1, 8);
  return static_cast<int>(std::max<std::int64_t>(1, std::min(k, pending)));
}

}  // namespace safnet
