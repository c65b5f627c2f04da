// A training set kept on the device: its pixel bytes and labels uploaded once, each epoch's order
// and augmentation draws uploaded once per epoch, each batch gathered, augmented and normalised on
// the device, so that a training step sends nothing across the bus.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "host/backend.h"

namespace safnet {

class ResidentTrainSet {
 public:
  // The set on `backend`'s device, or null (with a one-line notice unless quiet) when the backend
  // does not augment on the device, the set is an image folder, or its bytes would take more than
  // half of the free device memory: the loader then sends each batch's pixels.
  static std::unique_ptr<ResidentTrainSet> make(Backend& backend, const Dataset& data, bool quiet);

  // Uploads the epoch's image order and, for each, its draw (draw_augment(cfg, seed, epoch, index),
  // as the loader draws it).
  void start_epoch(const std::vector<std::int64_t>& order, const AugmentConfig& cfg, std::uint64_t seed, int epoch);
  // Images [start, start + n) of the epoch's order, augmented and normalised through `lut` into
  // `images` (n, C, H, W) f32, their labels into `labels` (n) i32, both on the device.
  void batch(std::int64_t start, int n, const std::vector<float>& lut, Tensor& images, Tensor& labels);

 private:
  ResidentTrainSet(Backend& backend, const Dataset& data);
  Backend& backend_;
  std::int64_t size_;
  Tensor pixels_, labels_;  // (N, C, H, W) u8, (N) i32
  Tensor order_, draws_;    // this epoch's: (N) i32, (N * 3) i32
};

}  // namespace safnet
