// Prefetching batch loader: one producer thread filling a bounded queue.
#include "data/loader.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/rng.h"
#include "host/check.h"

namespace safnet {

namespace {
constexpr std::uint64_t kShuffleStream = 0x73687566666c65ull;

// apply_augment followed by the per-channel table lookup, in one pass with no per-pixel branch:
// the producer thread must keep up with a GPU. Tests hold it equal to the two-step reference.
void augment_normalize(const std::uint8_t* src, float* dst, int channels, int height, int width,
                       const AugmentDraw& d, const float* lut) {
  // Output columns whose source column lies inside the image.
  const int lo = d.flip ? d.dx : -d.dx, hi = d.flip ? width + d.dx : width - d.dx;
  const int x0 = std::clamp(lo, 0, width), x1 = std::clamp(hi, x0, width);
  for (int c = 0; c < channels; ++c) {
    const float* t = lut + c * 256;
    const std::uint8_t* plane = src + static_cast<std::int64_t>(c) * height * width;  // (H, W)
    float* out = dst + static_cast<std::int64_t>(c) * height * width;                // (H, W)
    for (int y = 0; y < height; ++y) {
      float* row = out + static_cast<std::int64_t>(y) * width;
      const int sy = y + d.dy;
      if (sy < 0 || sy >= height) {
        std::fill(row, row + width, t[0]);
        continue;
      }
      const std::uint8_t* s = plane + static_cast<std::int64_t>(sy) * width;
      std::fill(row, row + x0, t[0]);
      if (d.flip) {
        const std::uint8_t* r = s + (width - 1 + d.dx);
        for (int x = x0; x < x1; ++x) row[x] = t[r[-x]];
      } else {
        const std::uint8_t* r = s + d.dx;
        for (int x = x0; x < x1; ++x) row[x] = t[r[x]];
      }
      std::fill(row + x1, row + width, t[0]);
    }
  }
}
}  // namespace

Loader::Loader(const Dataset& data, int batch, bool shuffle, std::uint64_t seed, AugmentConfig aug,
               Normalization norm, bool drop_last)
    : data_(&data), batch_(batch), shuffle_(shuffle), seed_(seed), aug_(aug), drop_last_(drop_last) {
  if (batch <= 0) fail("loader: batch size must be positive, got ", batch);
  if (aug.crop_pad < 0) fail("loader: crop padding must be >= 0, got ", aug.crop_pad);
  const int c = data.channels;
  if (c <= 0 || data.height <= 0 || data.width <= 0)
    fail("loader: data set '", data.name, "' has no image shape");
  if (static_cast<std::int64_t>(data.images.size()) != data.size() * data.image_bytes())
    fail("loader: data set '", data.name, "' holds ", data.images.size(), " pixel bytes for ", data.size(), " images");
  if (norm.mean.size() != static_cast<std::size_t>(c) || norm.std.size() != static_cast<std::size_t>(c))
    fail("loader: normalisation has ", norm.mean.size(), " means and ", norm.std.size(), " stds for ", c, " channels");
  lut_.resize(static_cast<std::size_t>(c) * 256);
  for (int ch = 0; ch < c; ++ch) {
    const float m = norm.mean[ch], s = norm.std[ch];
    if (!(s > 0.0f) || !std::isfinite(s) || !std::isfinite(m))
      fail("loader: channel ", ch, ": normalisation mean ", m, " std ", s, " (std must be finite and > 0)");
    for (int v = 0; v < 256; ++v) lut_[ch * 256 + v] = (static_cast<float>(v) / 255.0f - m) / s;
  }
}

Loader::~Loader() { stop(); }

std::int64_t Loader::batches_per_epoch() const {
  const std::int64_t n = data_->size();
  return drop_last_ ? n / batch_ : (n + batch_ - 1) / batch_;
}

std::vector<std::int64_t> Loader::epoch_order(int epoch) const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(data_->size()));
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle_) return order;
  Rng s(rng_key(seed_, kShuffleStream, static_cast<std::uint64_t>(epoch)));
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng_below(s, i)]);
  return order;
}

void Loader::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  not_full_.notify_all();
  if (thread_.joinable()) thread_.join();
  queue_.clear();
  stop_ = false;
  done_ = false;
  error_ = nullptr;
}

void Loader::start_epoch(int epoch) {
  stop();
  started_ = true;
  thread_ = std::thread(&Loader::produce, this, epoch_order(epoch), epoch);
}

Batch Loader::make_batch(const std::int64_t* idx, std::int64_t n, int epoch) const {
  const Dataset& d = *data_;
  const std::int64_t img = d.image_bytes();
  Batch b;
  b.images = Tensor({n, d.channels, d.height, d.width});
  b.labels.resize(static_cast<std::size_t>(n));
  b.indices.assign(idx, idx + n);
  float* out = b.images.data<float>();  // (N, C, H, W)
  for (std::int64_t i = 0; i < n; ++i) {
    augment_normalize(d.images.data() + idx[i] * img, out + i * img, d.channels, d.height, d.width,
                      draw_augment(aug_, seed_, epoch, idx[i]), lut_.data());
    b.labels[static_cast<std::size_t>(i)] = d.labels[static_cast<std::size_t>(idx[i])];
  }
  return b;
}

void Loader::produce(std::vector<std::int64_t> order, int epoch) {
  try {
    const std::int64_t batches = batches_per_epoch(), total = static_cast<std::int64_t>(order.size());
    for (std::int64_t k = 0; k < batches; ++k) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      const std::int64_t begin = k * batch_, n = std::min<std::int64_t>(batch_, total - begin);
      Batch b = make_batch(order.data() + begin, n, epoch);
      std::unique_lock<std::mutex> lock(mu_);
      not_full_.wait(lock, [&] { return stop_ || queue_.size() < kQueueDepth; });
      if (stop_) return;
      queue_.push_back(std::move(b));
      lock.unlock();
      not_empty_.notify_one();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  not_empty_.notify_all();
}

bool Loader::next(Batch& out) {
  if (!started_) fail("loader: next() called before start_epoch()");
  std::unique_lock<std::mutex> lock(mu_);
  not_empty_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (!queue_.empty()) {
    out = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return true;
  }
  if (error_) std::rethrow_exception(error_);
  return false;
}

}  // namespace safnet
