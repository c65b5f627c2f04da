// Model plans: graph, executor and batch staging per batch size.
#include "app/plan.h"

namespace safnet {

namespace {

// On a device every batch lands in the same slot (copied within the device when it lives there
// already), since a recorded CUDA graph reads the address it was recorded with and binding another
// would record the graph again; the CPU binds host tensors as they are.
const Tensor& in_slot(Backend& b, const Tensor& t, Tensor& slot) {
  if (b.device().is_cpu() || !(t.device() == b.device())) return b.stage(t, slot);
  if (t.device_raw() == slot.device_raw()) return slot;
  if (slot.shape() != t.shape() || slot.dtype() != t.dtype()) slot = b.zeros(t.shape(), t.dtype());
  b.copy(t, slot);
  return slot;
}

}  // namespace

void ModelPlan::set_batch(const Tensor& x, const Tensor& y) {
  Backend& b = exec->backend();
  exec->set_input(images, in_slot(b, x, images_slot));
  exec->set_input(labels, in_slot(b, y, labels_slot));
}

Tensor& ModelPlan::device_images() {
  const Value& v = graph.value(images);
  if (images_slot.shape() != v.shape) images_slot = exec->backend().zeros(v.shape, v.dtype);
  return images_slot;
}

std::size_t ModelPlans::bytes() const {
  std::size_t b = 0;
  for (const auto& [n, p] : plans_) b += p->exec->peak_bytes();
  return b;
}

Tensor& ModelPlan::device_labels() {
  const Value& v = graph.value(labels);
  if (labels_slot.shape() != v.shape) labels_slot = exec->backend().zeros(v.shape, v.dtype);
  return labels_slot;
}

ModelPlan& ModelPlans::at(int n, bool* built) {
  auto& slot = plans_[n];
  if (built) *built = !slot;
  if (slot) return *slot;
  slot = std::make_unique<ModelPlan>();
  ModelPlan& p = *slot;
  p.images = p.graph.input("images", {n, model_.in_channels, model_.height, model_.width});
  p.labels = p.graph.input("labels", {n}, DType::i32());
  p.logits = build_forward(model_, p.graph, p.images, options_.training);
  p.loss = p.graph.softmax_ce(p.logits, p.labels, options_.label_smoothing).first;
  std::vector<ValueId> keep{p.logits, p.loss};
  if (options_.training)
    for (auto [param, grad] : p.graph.backward(p.loss)) {
      p.grads[p.graph.value(param).name] = grad;
      keep.push_back(grad);
    }
  p.exec = std::make_unique<Executor>(p.graph, keep, backend_);
  p.exec->set_graph_replay(true);
  return p;
}

}  // namespace safnet
