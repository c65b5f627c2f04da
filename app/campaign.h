// Monte Carlo fault campaigns: a checkpoint's weights in fault-prone storage, bits flipped at a
// BER per trial, the test set evaluated through the SAF, one durable JSON line per trial.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "host/faults/flips.h"
#include "app/results.h"
#include "models/checkpoint.h"
#include "app/evaluate.h"
#include "app/stored_model.h"

namespace safnet {

// Which stored parameters faults may hit.
struct FaultTargets {
  std::vector<std::string> layers{"conv", "linear"};  // layer kinds: conv linear batchnorm
  bool biases = false;                                // linear biases
  bool batchnorm = false;                             // batch-norm weight/bias (never running stats)
  std::string pattern = "*";                          // glob on parameter names
  bool selects(const ParamInfo& p) const;
  std::string describe() const;
};

struct CampaignConfig {
  std::vector<DType> dtypes;
  std::vector<double> bers;
  std::int64_t trials = 100;  // per (dtype, BER) cell; with until_ci, the most
  // > 0: sequential stopping (`faults --until-ci W`). A cell stops at the smallest trial count
  // n >= min_trials (n < trials) whose 95% CI half-width of the mean top-1 over trials 0..n-1
  // (ci95_half_width, as the report prints it) is at most until_ci points. The clean trial does
  // not count. The rule needs every trial of a cell in one run: shard 0/1 only.
  double until_ci = 0;
  std::int64_t min_trials = 10;
  std::uint64_t seed = 0;
  FaultModel model = FaultModel::flip;
  FaultTargets targets;
  std::string bits = "all";  // bit positions, per parse_bit_positions
  Shard shard;
  int threads = 1;   // trials side by side where the backend allows (the CPU)
  // On a GPU: trials in flight, each on its own stream (app/trials_in_flight.h); 0: as many as
  // half of the free device memory holds, at most 8. Not with until_ci or verify_sampler, which
  // run one trial at a time.
  int trials_in_flight = 0;
  int batch = 256;
  NanLogits nan_logits = NanLogits::as_torch;  // how top-1/top-5 rank NaN logits
  // Device memory (MiB) for the clean activations a trial restarts from (the golden prefix): a
  // trial whose flips all lie in tensors first read at node k starts at the last cached position
  // <= k. Results are bit-identical to a full run. 0: every trial runs the whole network.
  double prefix_cache_mib = 1024;
  // The backend samples each trial's flips itself (on a GPU: on the device, nothing crossing the
  // bus); with this on it also hands them back and the run stops where they differ from the host
  // sampler's, whose sites every record and replay reports (`faults --verify-sampler`).
  bool verify_sampler = false;
  // Adds to a results file whose trials ran on another kind of device (cpu, cuda, sim); refused
  // otherwise, since a GPU's accuracies may differ from the CPU's by a few images.
  bool allow_mixed_devices = false;
  bool quiet = false;
};

// What the golden prefix saved in a run: trials evaluated with flips, those that started past the
// first layer, and the sum of the shares of the network's work (0..1) those skipped.
struct PrefixStats {
  std::int64_t trials = 0, started_late = 0;
  double skipped_share = 0;
  std::size_t positions = 0, candidates = 0;  // of the last cache built: positions cached, candidates
  std::string caches;  // per dtype: the positions and memory of its cache
};

// The node positions whose live activations the golden prefix caches, under `budget` bytes.
// reader[i], bits[i]: the first node reading target i and its bits that may flip; before[p]: the
// work of nodes [0, p); bytes(p): the memory caching position p takes. A trial whose first faulty
// tensor is read at f restarts at the last cached position <= f and saves before[that position].
// Candidates are the readers with work before them. When they all fit, all are chosen; otherwise
// greedily the one adding the most expected saved work per byte, given those already chosen, where
// P(first faulty reader is f) = P(no flip in the bits read before f) x P(some flip in those read
// at f), averaged over the campaign's BERs. Building the cache costs a clean pass up to its
// deepest position, so of the positions chosen only the shallowest ones are kept whose expected
// saving over `trials` trials exceeds that pass the most; none when no cut saves work (at a BER
// where nearly every trial hits the first layer, a few dozen trials never repay the pass).
std::vector<std::size_t> choose_prefix_positions(const std::vector<std::size_t>& reader, const std::vector<double>& bits,
                                                 const std::vector<double>& bers, const std::vector<double>& before,
                                                 const std::function<double(std::size_t)>& bytes, double budget,
                                                 double trials);

// A flipped bit as replay lists it.
struct FlipReport {
  std::string tensor;
  std::int64_t index = 0;
  int bit = 0;
  std::uint64_t before = 0, after = 0;  // stored words
  double value_before = 0, value_after = 0, read_after = 0;  // decoded; after the SAF
};

class Campaign {
 public:
  // `checkpoint_id` identifies the checkpoint's content (e.g. a hash of the file).
  // Trials run on `backend`.
  Campaign(Checkpoint ck, std::string checkpoint_id, std::string dataset, std::int64_t limit, EvalSet data,
           CampaignConfig cfg, Backend& backend);

  // The id stored in every record: a hash of everything that defines the campaign except the
  // dtype/BER/trial keys, so extending a campaign by dtypes, BERs or trials resumes it.
  const std::string& id() const { return id_; }

  // Runs every (dtype, ber, trial) of this shard not yet in `out`, in parallel. Returns the number
  // of records written; stops early (all finished trials kept) when interrupted. With until_ci the
  // trials of a cell are written in index order, the stop decided after each (resuming from the
  // trials already in `out`); the trial that meets the rule carries it (TrialRecord::until_ci) and
  // finished trials past it are dropped, so the file is the same whatever the thread count.
  std::int64_t run(ResultsWriter& out);

  // How many (dtype, ber, trial) of `shard` its results so far (`existing`, this campaign's
  // records) lack: what run() would do with that shard.
  std::int64_t pending(const std::vector<TrialRecord>& existing, Shard shard) const;

  // Evaluates one trial, and lists its flipped bits when `flips` is given; the backend's sampler is
  // always checked against the host's here.
  TrialRecord run_trial(DType dtype, double ber, std::int64_t trial, std::vector<FlipReport>* flips = nullptr);

  // The stored model of one trial with its faults applied, exactly as that trial is evaluated
  // (params() to bind, words() as stored); trial -1 gives the clean stored model.
  std::unique_ptr<StoredModel> faulty_model(DType dtype, double ber, std::int64_t trial) const;

  const std::vector<TargetSlice>& slices() const { return slices_; }
  // The golden prefix's savings in the last run().
  const PrefixStats& prefix_stats() const { return prefix_stats_; }
  // The flip sites of one trial over the concatenated target words (none for trial -1).
  std::vector<FlipSite> sample(DType dtype, double ber, std::int64_t trial) const;

 private:
  TrialRecord base_record(DType dtype, double ber, std::int64_t trial) const;
  FlipSpec spec(DType dtype, double ber) const;

  Checkpoint ck_;
  std::string dataset_;
  EvalSet data_;
  CampaignConfig cfg_;
  Backend& backend_;
  std::string id_;
  std::vector<TargetSlice> slices_;
  PrefixStats prefix_stats_;
};

std::string fnv1a_hex(const void* data, std::size_t size);

}  // namespace safnet
