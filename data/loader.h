// Prefetching batch loader: shuffles, augments (or decodes) and normalises on a background thread.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "host/tensor.h"

namespace safnet {

struct Batch {
  Tensor images;                      // f32 (N, C, H, W), normalised
  std::vector<std::int32_t> labels;   // (N)
  std::vector<std::int64_t> indices;  // (N) positions in the Dataset
  // Raw batches (Loader::set_raw) leave `images` empty and carry the pixels and each image's
  // draw instead, for augmentation and normalisation on a device.
  Tensor pixels;                      // u8 (N, C, H, W), as stored
  std::vector<AugmentDraw> draws;     // (N)
};

class Loader {
 public:
  // `data` must outlive the loader. shuffle: a seeded permutation per epoch that depends only on
  // (seed, epoch). Augmentation of an image depends only on (seed, epoch, image index), so a run
  // is reproducible bit for bit. drop_last drops a final partial batch.
  // Image-folder sets (data.files) are decoded and transformed per batch on decode_threads
  // threads (0: one per hardware thread), the train transform when aug.resized_crop, else the
  // eval transform. An unreadable image either stops the epoch (next() rethrows the error,
  // which names the file) or, under BadImages::skip, is left out of its batch after one
  // warning per file; a batch left with no image is not delivered.
  Loader(const Dataset& data, int batch, bool shuffle, std::uint64_t seed, AugmentConfig aug, Normalization norm,
         bool drop_last, int decode_threads = 0);
  ~Loader();  // stops and joins the producer, even mid-epoch
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // In-memory data sets only: batches carry raw pixels and draws (see Batch). Call before start_epoch.
  void set_raw(bool raw);
  // The normalisation table: the value of pixel byte v in channel c is lut()[c * 256 + v].
  const std::vector<float>& lut() const { return lut_; }

  // Abandons any epoch in progress and begins prefetching the batches of `epoch`.
  void start_epoch(int epoch);
  // Moves the next batch into `out`; false at the end of the epoch. Rethrows a producer error.
  bool next(Batch& out);
  // Batches a full epoch delivers when no image is skipped.
  std::int64_t batches_per_epoch() const;
  int decode_threads() const { return decode_threads_; }
  // Dataset indices in the order `epoch` visits them.
  std::vector<std::int64_t> epoch_order(int epoch) const;

 private:
  static constexpr std::size_t kQueueDepth = 2;

  void stop();
  void produce(std::vector<std::int64_t> order, int epoch);
  Batch make_batch(const std::int64_t* idx, std::int64_t n, int epoch) const;
  Batch make_file_batch(const std::int64_t* idx, std::int64_t n, int epoch) const;

  const Dataset* data_;
  int batch_;
  bool shuffle_;
  std::uint64_t seed_;
  AugmentConfig aug_;
  bool drop_last_;
  bool raw_ = false;
  int decode_threads_;
  std::vector<float> lut_;  // (C, 256) normalised value of each pixel byte
  // (N) image-folder files already reported as unreadable; only the producer touches it.
  mutable std::vector<char> warned_;

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Batch> queue_;
  bool started_ = false, stop_ = false, done_ = false;
  std::exception_ptr error_;
};

}  // namespace safnet
