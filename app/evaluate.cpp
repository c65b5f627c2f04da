// Whole-split evaluation with cached graphs.
#include "app/evaluate.h"

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

Metrics Evaluator::run(ParamStore& params, const EvalSet& data) {
  Backend& backend = plans_.backend();
  const ModelConfig& cfg = plans_.model();
  const std::int64_t per_image = data.images.numel() / std::max<std::int64_t>(1, data.size());
  sums_ = backend.zeros({sizeof(MetricSums)}, DType::u8());
  for (std::int64_t start = 0; start < data.size(); start += batch_) {
    const int n = static_cast<int>(std::min<std::int64_t>(batch_, data.size() - start));
    ModelPlan& p = plans_.at(n);
    const Tensor x = Tensor::view_of(data.images, {n, cfg.in_channels, cfg.height, cfg.width}, DType::f32(),
                                     static_cast<std::size_t>(start * per_image) * sizeof(float));
    Tensor y({n}, DType::i32());
    std::memcpy(y.data<std::int32_t>(), data.labels.data() + start, y.nbytes());
    p.exec->bind_params(params);
    p.set_batch(x, y);
    p.exec->run();
    backend.accumulate_metrics(p.exec->get(p.logits), p.exec->get(p.labels), p.exec->get(p.loss), rule_, sums_);
  }
  MetricSums s;
  std::memcpy(&s, backend.to_host(sums_).raw(), sizeof s);
  return metrics_from(s, data.size());
}

}  // namespace safnet
