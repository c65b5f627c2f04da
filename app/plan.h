// One model graph per batch size on one backend, shared by training and evaluation.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "host/executor.h"
#include "models/model.h"

namespace safnet {

// The forward pass of `model` for batches of n images (and, when training, the loss gradients of
// every parameter), its executor, and the device slots the batch is staged into.
struct ModelPlan {
  Graph graph;
  ValueId images = -1, labels = -1, logits = -1, loss = -1;
  std::map<std::string, ValueId> grads;  // training only: parameter name -> gradient value
  std::unique_ptr<Executor> exec;
  Tensor images_slot, labels_slot;  // where a host batch lands on the device (unused on the CPU)

  // Binds a batch, from the host or already on the executor's device, as the graph's inputs; on a
  // device it lands in the slots below, whose addresses a recorded CUDA graph keeps reading.
  void set_batch(const Tensor& images, const Tensor& labels);
  // The device tensor a batch of images can be written into directly (device augmentation).
  Tensor& device_images();
  // Likewise for the labels (a resident training set gathers them there).
  Tensor& device_labels();
};

struct PlanOptions {
  bool training = false;
  float label_smoothing = 0.0f;
};

// Plans by batch size (the full batch and a final partial one), built on first use; replays each
// run as a CUDA graph where the backend can record one. Not thread-safe: one per thread.
class ModelPlans {
 public:
  ModelPlans(ModelConfig model, PlanOptions options, Backend& backend)
      : model_(std::move(model)), options_(options), backend_(backend) {}
  // The plan for batches of n; `built` (when given) tells whether this call built it.
  ModelPlan& at(int n, bool* built = nullptr);
  Backend& backend() const { return backend_; }
  const ModelConfig& model() const { return model_; }
  // Device memory the executors of the plans built so far hold (their activations).
  std::size_t bytes() const;

 private:
  ModelConfig model_;
  PlanOptions options_;
  Backend& backend_;
  std::map<int, std::unique_ptr<ModelPlan>> plans_;
};

}  // namespace safnet
