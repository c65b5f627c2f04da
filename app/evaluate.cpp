// Whole-split evaluation with cached graphs.
#include "app/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>

#include "host/check.h"

namespace safnet {

EvalSet make_eval_set(const Dataset& d, const Normalization& norm) {
  // Image folders decode here (in parallel); an unreadable image is dropped under --bad-images skip.
  const std::int64_t per_image = d.image_bytes();
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(d.size() * per_image));
  std::vector<char> kept(static_cast<std::size_t>(d.size()));
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 8) if (!d.files.empty())
  for (std::int64_t i = 0; i < d.size(); ++i) {
    try {
      kept[static_cast<std::size_t>(i)] = dataset_image(d, i, pixels.data() + i * per_image);
    } catch (...) {
#pragma omp critical
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  std::vector<std::int64_t> order;
  for (std::int64_t i = 0; i < d.size(); ++i)
    if (kept[static_cast<std::size_t>(i)]) order.push_back(i);

  EvalSet s;
  const std::int64_t n = static_cast<std::int64_t>(order.size());
  s.images = Tensor({n, d.channels, d.height, d.width});
  const std::int64_t plane = static_cast<std::int64_t>(d.height) * d.width;
  float* out = s.images.data<float>();
  for (std::int64_t j = 0; j < n; ++j) {
    const std::int64_t i = order[static_cast<std::size_t>(j)];
    s.labels.push_back(d.labels[static_cast<std::size_t>(i)]);
    for (int c = 0; c < d.channels; ++c) {
      const std::uint8_t* src = pixels.data() + i * per_image + c * plane;
      float* dst = out + (j * d.channels + c) * plane;
      const float mean = norm.mean.at(static_cast<std::size_t>(c)), inv = 1.0f / norm.std.at(static_cast<std::size_t>(c));
      for (std::int64_t p = 0; p < plane; ++p) dst[p] = (src[p] / 255.0f - mean) * inv;
    }
  }
  return s;
}

Metrics metrics_from(const MetricSums& s, std::int64_t n) {
  Metrics m;
  m.n = n;
  m.nonfinite_logits = s.nonfinite_rows;
  if (n > 0) {
    m.top1 = 100.0 * static_cast<double>(s.top1) / static_cast<double>(n);
    m.top5 = 100.0 * static_cast<double>(s.top5) / static_cast<double>(n);
    m.loss = s.loss_sum / static_cast<double>(n);
  }
  return m;
}

ModelPlan& Evaluator::plan_at(int n) {
  bool built = false;
  ModelPlan& p = plans_.at(n, &built);
  if (built) {
    // A cache built from one batch size is replayed in the plans of the others by node position.
    const auto& nodes = p.graph.nodes();
    if (nodes_.empty()) {
      for (const Node& node : nodes) nodes_.push_back(node.name + "/" + op_name(node.op));
    } else {
      bool same = nodes.size() == nodes_.size();
      for (std::size_t i = 0; same && i < nodes.size(); ++i) same = nodes_[i] == nodes[i].name + "/" + op_name(nodes[i].op);
      SAFNET_CHECK(same, "the ", plans_.model().arch, " graph for batches of ", n,
                   " has other nodes than for the other batch sizes");
    }
  }
  return p;
}

ModelPlan& Evaluator::plan(const EvalSet& data) {
  return plan_at(static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(batch_, data.size()))));
}

void Evaluator::set_batch(ModelPlan& p, const EvalSet& data, std::int64_t start, int n) {
  if (!resident_ || !resident_->holds(data)) {
    const ModelConfig& cfg = plans_.model();
    SAFNET_CHECK(data.images.numel() == data.size() * cfg.in_channels * cfg.height * cfg.width,
                 "the split's images are not (", data.size(), ", ", cfg.in_channels, ", ", cfg.height, ", ", cfg.width,
                 ")");
    resident_.reset();  // frees the device copy of another split before uploading this one
    resident_ = std::make_shared<ResidentSet>(plans_.backend(), data, batch_, quiet_);
  }
  auto [images, labels] = resident_->batch(start, n);
  p.set_batch(images, labels);
}

PrefixCache Evaluator::cache_prefix(ParamStore& params, const EvalSet& data, std::vector<std::size_t> positions) {
  Backend& backend = plans_.backend();
  std::sort(positions.begin(), positions.end());
  positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
  PrefixCache cache;
  cache.positions_ = positions;
  cache.values_.resize(positions.size());
  for (std::int64_t start = 0; start < data.size(); start += batch_) {
    const int n = static_cast<int>(std::min<std::int64_t>(batch_, data.size() - start));
    ModelPlan& p = plan_at(n);
    for (std::size_t pos : positions)
      SAFNET_CHECK(pos > 0 && pos <= p.exec->node_count(), "prefix position ", pos, " outside (0, ",
                   p.exec->node_count(), "]");
    p.exec->bind_params(params);
    set_batch(p, data, start, n);
    std::size_t done = 0;
    for (std::size_t k = 0; k < positions.size(); ++k) {
      p.exec->run_range(done, positions[k]);
      done = positions[k];
      std::vector<Tensor>& kept = cache.values_[k].emplace_back();
      for (ValueId v : p.exec->live_across(positions[k])) {
        const Tensor& t = p.exec->get(v);
        Tensor& copy = kept.emplace_back(backend.zeros(t.shape(), t.dtype()));
        backend.copy(t, copy);
        cache.bytes_ += copy.nbytes();
      }
    }
  }
  backend.synchronize();
  return cache;
}

Metrics Evaluator::run(ParamStore& params, const EvalSet& data) { return run_impl(params, data, nullptr, 0); }

Metrics Evaluator::run_from(ParamStore& params, const EvalSet& data, const PrefixCache& cache, std::size_t k) {
  SAFNET_CHECK(k < cache.positions_.size(), "prefix cache position ", k, " of ", cache.positions_.size());
  return run_impl(params, data, &cache, k);
}

bool Evaluator::prepare(const EvalSet& data, const Evaluator* other) {
  if (other && other->resident_ && other->resident_->holds(data)) resident_ = other->resident_;
  for (std::int64_t start = 0; start < data.size(); start += batch_) {
    const int n = static_cast<int>(std::min<std::int64_t>(batch_, data.size() - start));
    set_batch(plan_at(n), data, start, n);
  }
  if (!zero_sums_.defined()) zero_sums_ = plans_.backend().zeros({sizeof(MetricSums)}, DType::u8());
  return resident_->chunk_images() >= data.size();
}

void Evaluator::issue(ParamStore& params, const EvalSet& data, Tensor& sums, const PrefixCache* cache, std::size_t k) {
  SAFNET_CHECK(sums.nbytes() == sizeof(MetricSums), "metric sums of ", sums.nbytes(), " bytes");
  plans_.backend().copy(zero_sums_, sums);
  add_batches(params, data, sums, cache, k, false);
}

void Evaluator::add_batches(ParamStore& params, const EvalSet& data, Tensor& sums, const PrefixCache* cache,
                            std::size_t k, bool replay) {
  Backend& backend = plans_.backend();
  std::size_t batch = 0;
  for (std::int64_t start = 0; start < data.size(); start += batch_, ++batch) {
    const int n = static_cast<int>(std::min<std::int64_t>(batch_, data.size() - start));
    ModelPlan& p = plan_at(n);
    p.exec->bind_params(params);
    set_batch(p, data, start, n);
    if (cache) {
      const std::size_t pos = cache->positions_.at(k);
      const std::vector<Tensor>& kept = cache->values_[k].at(batch);
      const std::vector<ValueId> live = p.exec->live_across(pos);
      SAFNET_CHECK(live.size() == kept.size(), "prefix cache holds ", kept.size(), " values at node ", pos, ", the plan needs ",
                   live.size());
      for (std::size_t i = 0; i < live.size(); ++i) backend.copy(kept[i], p.exec->get(live[i]));
      p.exec->run_range(pos, p.exec->node_count());
    } else if (replay) {
      p.exec->run();
    } else {
      p.exec->run_range(0, p.exec->node_count());
    }
    backend.accumulate_metrics(p.exec->get(p.logits), p.exec->get(p.labels), p.exec->get(p.loss), rule_, sums);
  }
}

Metrics Evaluator::run_impl(ParamStore& params, const EvalSet& data, const PrefixCache* cache, std::size_t k) {
  Backend& backend = plans_.backend();
  sums_ = backend.zeros({sizeof(MetricSums)}, DType::u8());
  add_batches(params, data, sums_, cache, k, true);
  MetricSums s;
  std::memcpy(&s, backend.to_host(sums_).raw(), sizeof s);
  return metrics_from(s, data.size());
}

}  // namespace safnet
