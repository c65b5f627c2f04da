// Test-set evaluation of a model: top-1, top-5 and mean loss over a whole split.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "app/plan.h"
#include "app/resident_set.h"

namespace safnet {

struct Metrics {
  double top1 = 0, top5 = 0;         // percent
  double loss = 0;                   // mean softmax cross-entropy
  std::int64_t n = 0;
  std::int64_t nonfinite_logits = 0;  // images with a NaN or infinite logit
};

// A whole split normalised once, so repeated evaluations (fault trials) skip the conversion.
struct EvalSet {
  Tensor images;                     // f32 (N, C, H, W)
  std::vector<std::int32_t> labels;  // (N)
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};
EvalSet make_eval_set(const Dataset& data, const Normalization& norm);

// The clean activations of a whole split at chosen node positions of the model's forward graph:
// an evaluation whose parameters differ from the ones the cache was built with only in tensors
// first read at or after a position can start there (Evaluator::run_from). Built by one
// Evaluator, read by any Evaluator of the same model and batch size on the same backend; read-only
// once built, so threads may share it.
class PrefixCache {
 public:
  const std::vector<std::size_t>& positions() const { return positions_; }  // ascending
  std::size_t bytes() const { return bytes_; }  // device memory the cached activations take

 private:
  friend class Evaluator;
  std::vector<std::size_t> positions_;
  // [position][batch]: the values of Executor::live_across(position), in its order.
  std::vector<std::vector<std::vector<Tensor>>> values_;
  std::size_t bytes_ = 0;
};

// Evaluates a model over whole splits, reusing one plan per batch size, and reduces the metrics
// on the device that ran the model. Not thread-safe: one per thread.
class Evaluator {
 public:
  // `quiet`: no notice when a split is streamed in chunks.
  Evaluator(ModelConfig cfg, int batch, Backend& backend, NanLogits rule = NanLogits::as_torch, bool quiet = false)
      : plans_(std::move(cfg), PlanOptions{}, backend), batch_(batch), rule_(rule), quiet_(quiet) {}
  // Parameters may be bound in any storage dtype (f32, f16, bf16, fixed): weights are read
  // through the model's SAF as they load. They live on the backend's device; `data` on the host,
  // copied to the device by the first run over it and kept there (ResidentSet) while later runs
  // pass the same `data`; a run costs one copy of the metrics back and one synchronisation.
  Metrics run(ParamStore& params, const EvalSet& data);

  // The plan of the first batch of `data` (node positions are the same for every batch size).
  ModelPlan& plan(const EvalSet& data);
  // Runs the clean model (`params`) over `data` batch by batch, node range by node range, and keeps
  // copies of the activations live across each of `positions` (in (0, node count]).
  PrefixCache cache_prefix(ParamStore& params, const EvalSet& data, std::vector<std::size_t> positions);
  // run(params, data) starting at cache.positions()[k] with the cached activations: the same
  // metrics, bit for bit, when params differ from the cache's only in tensors first read at or
  // after that position and the kernels run with the same thread count as when it was built.
  Metrics run_from(ParamStore& params, const EvalSet& data, const PrefixCache& cache, std::size_t k);

  // For a recording of whole evaluations (app/trials_in_flight.h): builds the plans of every batch
  // size of `data` and puts the split on the device, shared with `other` (an Evaluator of the same
  // model on the same backend) when given, so that issue() allocates nothing. False when the split
  // is held in chunks (a recording cannot upload them).
  bool prepare(const EvalSet& data, const Evaluator* other = nullptr);
  // run(params, data), or run_from(..., *cache, k), without reading the metrics back: zeroes `sums`
  // (a MetricSums on the device) and adds every batch to it. After prepare(data) it allocates
  // nothing, copies nothing to or from the host and never waits.
  void issue(ParamStore& params, const EvalSet& data, Tensor& sums, const PrefixCache* cache = nullptr,
             std::size_t k = 0);
  // Device memory the plans built so far hold (not the split).
  std::size_t device_bytes() const { return plans_.bytes(); }

 private:
  // The plan for a batch of n images, checked to have the node list of every other plan.
  ModelPlan& plan_at(int n);
  // Batch [start, start + n) of `data` bound as the plan's inputs, read from the device-resident copy.
  void set_batch(ModelPlan& p, const EvalSet& data, std::int64_t start, int n);
  Metrics run_impl(ParamStore& params, const EvalSet& data, const PrefixCache* cache, std::size_t k);
  // Adds every batch's metrics to `sums`; a whole-network pass replays the executor's recording
  // when `replay` (not inside a recording of the caller's, which records the nodes themselves).
  void add_batches(ParamStore& params, const EvalSet& data, Tensor& sums, const PrefixCache* cache, std::size_t k,
                   bool replay);

  ModelPlans plans_;
  std::vector<std::string> nodes_;  // name/op of every node, as the first plan built has them
  int batch_;
  NanLogits rule_;
  bool quiet_;
  Tensor sums_;  // MetricSums on the device
  Tensor zero_sums_;  // a zero MetricSums on the device, which issue() copies into its sums
  std::shared_ptr<ResidentSet> resident_;  // of the split last evaluated, perhaps another Evaluator's too
};

// The metrics of sums gathered over n images.
Metrics metrics_from(const MetricSums& sums, std::int64_t n);

}  // namespace safnet
