// The training set on the device: one upload, then per epoch the order and the draws.
#include "app/resident_train_set.h"

#include <cstdio>
#include <cstring>

#include "host/check.h"

namespace safnet {

std::unique_ptr<ResidentTrainSet> ResidentTrainSet::make(Backend& backend, const Dataset& data, bool quiet) {
  if (!backend.augments_on_device() || !data.files.empty() || data.size() == 0) return nullptr;
  // Pixels and labels, plus the epoch's order and draws (4 i32 per image).
  const std::size_t bytes = static_cast<std::size_t>(data.size()) * (static_cast<std::size_t>(data.image_bytes()) + 20);
  if (2 * bytes > backend.free_bytes()) {
    if (!quiet)
      std::fprintf(stderr, "the %lld training images (%.1f MiB) do not fit in free device memory: each step sends "
                   "its batch's pixels\n",
                   static_cast<long long>(data.size()), static_cast<double>(bytes) / 1048576.0);
    return nullptr;
  }
  return std::unique_ptr<ResidentTrainSet>(new ResidentTrainSet(backend, data));
}

ResidentTrainSet::ResidentTrainSet(Backend& backend, const Dataset& data) : backend_(backend), size_(data.size()) {
  SAFNET_CHECK(data.images.size() == static_cast<std::size_t>(size_ * data.image_bytes()), "the training set's ",
               data.images.size(), " pixel bytes are not ", size_, " images of ", data.image_bytes());
  Tensor pixels({size_, data.channels, data.height, data.width}, DType::u8());
  std::memcpy(pixels.raw(), data.images.data(), data.images.size());
  Tensor labels({size_}, DType::i32());
  std::memcpy(labels.raw(), data.labels.data(), labels.nbytes());
  pixels_ = backend.to_device(pixels);
  labels_ = backend.to_device(labels);
  order_ = backend.zeros({size_}, DType::i32());
  draws_ = backend.zeros({size_ * 3}, DType::i32());
}

void ResidentTrainSet::start_epoch(const std::vector<std::int64_t>& order, const AugmentConfig& cfg,
                                   std::uint64_t seed, int epoch) {
  SAFNET_CHECK(static_cast<std::int64_t>(order.size()) == size_, "an epoch of ", order.size(), " images over ", size_);
  Tensor o({size_}, DType::i32()), d({size_ * 3}, DType::i32());
  auto* op = o.data<std::int32_t>();
  auto* dp = d.data<std::int32_t>();
  for (std::size_t i = 0; i < order.size(); ++i) {
    op[i] = static_cast<std::int32_t>(order[i]);
    const AugmentDraw a = draw_augment(cfg, seed, epoch, order[i]);
    dp[3 * i] = a.dy;
    dp[3 * i + 1] = a.dx;
    dp[3 * i + 2] = a.flip ? 1 : 0;
  }
  backend_.copy(o, order_);
  backend_.copy(d, draws_);
}

void ResidentTrainSet::batch(std::int64_t start, int n, const std::vector<float>& lut, Tensor& images, Tensor& labels) {
  SAFNET_CHECK(start >= 0 && n >= 0 && start + n <= size_, "images [", start, ", ", start + n, ") of ", size_);
  const Tensor index = Tensor::view_of(order_, {n}, DType::i32(), static_cast<std::size_t>(start) * 4);
  const Tensor draws = Tensor::view_of(draws_, {n * 3}, DType::i32(), static_cast<std::size_t>(start) * 12);
  backend_.augment_gather(pixels_, labels_, index, draws, lut, images, labels);
}

}  // namespace safnet
