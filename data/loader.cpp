// Prefetching batch loader: one producer thread filling a bounded queue; image files decoded on a few more.
#include "data/loader.h"

#include <cstring>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <numeric>

#include "data/image_folder.h"
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

// Joins the threads it holds even when starting one of them threw.
struct JoinAll {
  std::vector<std::thread> threads;
  ~JoinAll() {
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
};
}  // namespace

Loader::Loader(const Dataset& data, int batch, bool shuffle, std::uint64_t seed, AugmentConfig aug,
               Normalization norm, bool drop_last, int decode_threads)
    : data_(&data),
      batch_(batch),
      shuffle_(shuffle),
      seed_(seed),
      aug_(aug),
      drop_last_(drop_last),
      decode_threads_(decode_threads) {
  if (batch <= 0) fail("loader: batch size must be positive, got ", batch);
  if (aug.crop_pad < 0) fail("loader: crop padding must be >= 0, got ", aug.crop_pad);
  if (decode_threads < 0) fail("loader: decode threads must be >= 0 (0: one per hardware thread), got ", decode_threads);
  if (decode_threads_ == 0) decode_threads_ = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int c = data.channels;
  if (c <= 0 || data.height <= 0 || data.width <= 0)
    fail("loader: data set '", data.name, "' has no image shape");
  if (!data.files.empty()) {
    if (static_cast<std::int64_t>(data.files.size()) != data.size())
      fail("loader: data set '", data.name, "' lists ", data.files.size(), " files for ", data.size(), " labels");
    warned_.assign(data.files.size(), 0);
  } else {
    if (aug.resized_crop)
      fail("loader: resized_crop is the image-folder train transform; data set '", data.name, "' is in memory");
    if (static_cast<std::int64_t>(data.images.size()) != data.size() * data.image_bytes())
      fail("loader: data set '", data.name, "' holds ", data.images.size(), " pixel bytes for ", data.size(),
           " images");
  }
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

void Loader::set_raw(bool raw) {
  if (raw && !data_->files.empty()) fail("loader: raw batches need an in-memory data set, not an image folder");
  raw_ = raw;
}

Batch Loader::make_batch(const std::int64_t* idx, std::int64_t n, int epoch) const {
  const Dataset& d = *data_;
  if (!d.files.empty()) return make_file_batch(idx, n, epoch);
  const std::int64_t img = d.image_bytes();
  Batch b;
  if (raw_) {
    b.pixels = Tensor({n, d.channels, d.height, d.width}, DType::u8());
    b.labels.resize(static_cast<std::size_t>(n));
    b.indices.assign(idx, idx + n);
    for (std::int64_t i = 0; i < n; ++i) {
      std::memcpy(b.pixels.data<std::uint8_t>() + i * img, d.images.data() + idx[i] * img, static_cast<std::size_t>(img));
      b.draws.push_back(draw_augment(aug_, seed_, epoch, idx[i]));
      b.labels[static_cast<std::size_t>(i)] = d.labels[static_cast<std::size_t>(idx[i])];
    }
    return b;
  }
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

Batch Loader::make_file_batch(const std::int64_t* idx, std::int64_t n, int epoch) const {
  const Dataset& d = *data_;
  const std::int64_t img = d.image_bytes();
  std::vector<std::uint8_t> px(static_cast<std::size_t>(n * img));  // (N, C, H, W)
  std::vector<std::string> errors(static_cast<std::size_t>(n));     // (N) why image i is unreadable
  std::vector<char> bad(static_cast<std::size_t>(n), 0);             // (N)
  std::atomic<std::int64_t> next{0};
  std::mutex fatal_mu;
  std::exception_ptr fatal;  // anything but a bad file (out of memory) ends the epoch whatever the policy
  const TrainDrawKey key{seed_, epoch};
  const auto work = [&] {
    for (std::int64_t i; (i = next.fetch_add(1)) < n;) {
      try {
        transform_folder_image(d, idx[i], aug_.resized_crop ? &key : nullptr, px.data() + i * img);
      } catch (const Error& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
        bad[static_cast<std::size_t>(i)] = 1;
      } catch (...) {
        std::lock_guard<std::mutex> lock(fatal_mu);
        if (!fatal) fatal = std::current_exception();
      }
    }
  };
  {
    JoinAll pool;
    const std::int64_t helpers = std::min<std::int64_t>(decode_threads_, n) - 1;
    for (std::int64_t t = 0; t < helpers; ++t) pool.threads.emplace_back(work);
    work();
  }
  if (fatal) std::rethrow_exception(fatal);

  std::vector<std::int64_t> keep;  // positions in the batch, in batch order
  for (std::int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    if (!bad[k]) {
      keep.push_back(i);
      continue;
    }
    if (d.bad_images == BadImages::stop) throw Error(errors[k]);
    if (!warned_[static_cast<std::size_t>(idx[i])]) {
      warned_[static_cast<std::size_t>(idx[i])] = 1;
      std::cerr << "warning: " << errors[k] << "; image skipped\n";
    }
  }
  const auto m = static_cast<std::int64_t>(keep.size());
  Batch b;
  b.images = Tensor({m, d.channels, d.height, d.width});
  b.labels.resize(static_cast<std::size_t>(m));
  b.indices.resize(static_cast<std::size_t>(m));
  float* out = b.images.data<float>();  // (M, C, H, W)
  const std::int64_t plane = static_cast<std::int64_t>(d.height) * d.width;
  for (std::int64_t j = 0; j < m; ++j) {
    const std::int64_t i = keep[static_cast<std::size_t>(j)];
    const std::uint8_t* src = px.data() + i * img;
    float* dst = out + j * img;
    for (int c = 0; c < d.channels; ++c) {
      const float* t = lut_.data() + c * 256;
      for (std::int64_t p = 0; p < plane; ++p) dst[c * plane + p] = t[src[c * plane + p]];
    }
    b.indices[static_cast<std::size_t>(j)] = idx[i];
    b.labels[static_cast<std::size_t>(j)] = d.labels[static_cast<std::size_t>(idx[i])];
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
      if (b.indices.empty()) continue;
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
