// The evaluation split on the device: one upload, or chunks of whole batches when it does not fit.
#include "app/resident_set.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>

#include "app/evaluate.h"

namespace safnet {

ResidentSet::ResidentSet(Backend& backend, const EvalSet& data, int batch, bool quiet)
    : backend_(backend),
      data_(data),
      images_source_(data.images.device_raw()),
      labels_source_(data.labels.data()),
      image_bytes_(data.size() ? data.images.nbytes() / static_cast<std::size_t>(data.size()) : 0) {
  const std::int64_t n = data.size();
  host_labels_ = Tensor({n}, DType::i32());
  if (n) std::memcpy(host_labels_.data<std::int32_t>(), data.labels.data(), host_labels_.nbytes());
  chunk_ = std::max<std::int64_t>(1, n);
  if (backend.device().is_cpu()) {
    images_ = data.images;
    labels_ = host_labels_;
    loaded_ = 0;
    return;
  }
  const Shape& s = data.images.shape();
  // The largest chunk of whole batches, halving from the whole split, for which twice its size can
  // be allocated: the split never takes more than half of what was free, so the model's own memory
  // (a training run's, whose test passes use this too) is not crowded out. The allocator fails
  // cleanly (its cache emptied first) when device memory is short.
  const std::int64_t step = std::max<std::int64_t>(1, std::min<std::int64_t>(batch, n));
  const std::int64_t per_image = static_cast<std::int64_t>(image_bytes_) + 4;  // f32 pixels and an i32 label
  for (;;) {
    try {
      backend.zeros({2 * chunk_ * per_image}, DType::u8());  // released at once
      images_ = backend.zeros({chunk_, s[1], s[2], s[3]}, DType::f32());
      labels_ = backend.zeros({chunk_}, DType::i32());
      break;
    } catch (const std::exception&) {
      images_ = labels_ = Tensor();
      if (chunk_ <= step) throw;
      chunk_ = std::max(step, (chunk_ / 2) / step * step);
    }
  }
  if (chunk_ < n && !quiet)
    std::fprintf(stderr, "the %lld evaluation images (%.1f MiB) do not fit in free device memory: each pass streams "
                 "them in chunks of %lld\n",
                 static_cast<long long>(n), static_cast<double>(data.images.nbytes()) / 1048576.0,
                 static_cast<long long>(chunk_));
}

bool ResidentSet::holds(const EvalSet& data) const {
  return &data == &data_ && data.images.device_raw() == images_source_ && data.labels.data() == labels_source_ &&
         data.size() == host_labels_.numel();
}

void ResidentSet::load(std::int64_t first) {
  const std::int64_t n = std::min(chunk_, data_.size() - first);
  const Shape& s = data_.images.shape();
  const Shape shape{n, s[1], s[2], s[3]};
  Tensor dst = Tensor::view_of(images_, shape, DType::f32());
  backend_.copy(Tensor::view_of(data_.images, shape, DType::f32(), static_cast<std::size_t>(first) * image_bytes_), dst);
  Tensor dst_labels = Tensor::view_of(labels_, {n}, DType::i32());
  backend_.copy(Tensor::view_of(host_labels_, {n}, DType::i32(), static_cast<std::size_t>(first) * 4), dst_labels);
  loaded_ = first;
}

std::pair<Tensor, Tensor> ResidentSet::batch(std::int64_t start, int n) {
  SAFNET_CHECK(start >= 0 && n > 0 && start + n <= data_.size(), "batch [", start, ", ", start + n, ") of ",
               data_.size(), " images");
  if (loaded_ < 0 || start < loaded_ || start + n > loaded_ + chunk_) load(start / chunk_ * chunk_);
  const std::int64_t at = start - loaded_;
  const Shape& s = data_.images.shape();
  return {Tensor::view_of(images_, {n, s[1], s[2], s[3]}, DType::f32(), static_cast<std::size_t>(at) * image_bytes_),
          Tensor::view_of(labels_, {n}, DType::i32(), static_cast<std::size_t>(at) * 4)};
}

}  // namespace safnet
