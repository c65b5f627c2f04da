// Whole-split evaluation with cached graphs.
#include "app/evaluate.h"

#include <cmath>
#include <cstring>
#include <exception>

#include "host/check.h"
#include "host/cpu/ops.h"

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

Evaluator::Plan& Evaluator::plan(int n) {
  auto& slot = plans_[n];
  if (!slot) {
    slot = std::make_unique<Plan>();
    Plan& p = *slot;
    p.images = p.graph.input("images", {n, cfg_.in_channels, cfg_.height, cfg_.width});
    p.labels = p.graph.input("labels", {n}, DType::i32());
    p.logits = build_forward(cfg_, p.graph, p.images, false);
    p.loss = p.graph.softmax_ce(p.logits, p.labels, 0.0f).first;
    p.exec = std::make_unique<Executor>(p.graph, std::vector<ValueId>{p.logits, p.loss}, backend_);
    if (!backend_.device().is_cpu()) {
      p.exec->set_graph_replay(true);
      p.images_on_device = backend_.zeros(p.graph.value(p.images).shape, DType::f32());
      p.labels_on_device = backend_.zeros({n}, DType::i32());
    }
  }
  return *slot;
}

Metrics Evaluator::run(ParamStore& params, const EvalSet& data) {
  Metrics m;
  const std::int64_t per_image = data.images.numel() / std::max<std::int64_t>(1, data.size());
  double loss_sum = 0;
  std::int64_t top1 = 0, top5 = 0;
  for (std::int64_t start = 0; start < data.size(); start += batch_) {
    const int n = static_cast<int>(std::min<std::int64_t>(batch_, data.size() - start));
    Plan& p = plan(n);
    const Tensor x = Tensor::view_of(data.images, {n, cfg_.in_channels, cfg_.height, cfg_.width}, DType::f32(),
                                     static_cast<std::size_t>(start * per_image) * sizeof(float));
    Tensor y({n}, DType::i32());
    std::memcpy(y.data<std::int32_t>(), data.labels.data() + start, y.nbytes());
    p.exec->bind_params(params);
    if (backend_.device().is_cpu()) {
      p.exec->set_input(p.images, x);
      p.exec->set_input(p.labels, y);
    } else {
      backend_.copy(x, p.images_on_device);
      backend_.copy(y, p.labels_on_device);
      p.exec->set_input(p.images, p.images_on_device);
      p.exec->set_input(p.labels, p.labels_on_device);
    }
    p.exec->run();
    const Tensor logits = backend_.to_host(p.exec->get(p.logits));
    std::int64_t t1 = 0, t5 = 0;
    cpu::topk_correct(n, cfg_.classes, logits.data<float>(), y.data<std::int32_t>(), &t1, &t5);
    top1 += t1;
    top5 += t5;
    loss_sum += static_cast<double>(backend_.to_host(p.exec->get(p.loss)).data<float>()[0]) * n;
  }
  m.n = data.size();
  if (m.n > 0) {
    m.top1 = 100.0 * static_cast<double>(top1) / static_cast<double>(m.n);
    m.top5 = 100.0 * static_cast<double>(top5) / static_cast<double>(m.n);
    m.loss = loss_sum / static_cast<double>(m.n);
  }
  return m;
}

}  // namespace safnet
