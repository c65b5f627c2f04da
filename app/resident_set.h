// An evaluation split kept where the model runs: on a GPU uploaded once and read batch by batch
// in place, so repeated evaluations (fault trials) send nothing across the bus.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include "host/backend.h"

namespace safnet {

struct EvalSet;  // app/evaluate.h

// The images and labels of an EvalSet on the backend's device. Where the whole split would take
// more than half of the free device memory it is held in chunks of whole batches, each uploaded
// when a batch in it is asked for (a one-line notice says so); on the CPU the split's own storage
// serves.
class ResidentSet {
 public:
  // `data` must outlive this; `batch`: the batch size the chunks hold a multiple of.
  ResidentSet(Backend& backend, const EvalSet& data, int batch, bool quiet = false);
  // Whether this holds `data` (the same object, with the same images and labels storage).
  bool holds(const EvalSet& data) const;
  // Images (n, C, H, W) f32 and labels (n) i32 of images [start, start + n), on the device: views
  // valid until the next call.
  std::pair<Tensor, Tensor> batch(std::int64_t start, int n);
  // Images held on the device at once: the whole split, or one chunk of it.
  std::int64_t chunk_images() const { return chunk_; }

 private:
  void load(std::int64_t first);

  Backend& backend_;
  const EvalSet& data_;
  const void* images_source_;  // data_'s storage when uploaded: a split moved into data_ since differs
  const void* labels_source_;
  std::size_t image_bytes_;  // f32 pixels of one image
  Tensor host_labels_;       // (N) i32
  Tensor images_, labels_;   // (chunk_, C, H, W) f32, (chunk_) i32 on the device
  std::int64_t chunk_ = 0;
  std::int64_t loaded_ = -1;  // first image of the chunk held, -1 before the first load
};

}  // namespace safnet
