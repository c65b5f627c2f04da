// Data set dispatch by name and the standard per-channel normalisation of each data set.
#include "data/dataset.h"

#include "data/cifar.h"
#include "data/idx.h"
#include "host/check.h"

namespace safnet {

const char* dataset_names() { return "cifar10 cifar100 mnist fashion-mnist"; }

Dataset load_dataset(const std::string& name, const std::string& dir, Split split, std::int64_t limit) {
  if (name == "cifar10") return load_cifar(CifarKind::cifar10, dir, split, limit);
  if (name == "cifar100") return load_cifar(CifarKind::cifar100, dir, split, limit);
  if (name == "mnist" || name == "fashion-mnist") return load_idx(name, dir, split, limit);
  fail("unknown data set '", name, "' (valid: ", dataset_names(), ")");
}

Normalization default_normalization(const std::string& name) {
  // Statistics of each training set over all its pixels. For CIFAR-10 the std is the true
  // per-pixel one (0.247...), not the per-image-averaged 0.2023 that circulates in code.
  if (name == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  if (name == "cifar100") return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
  if (name == "mnist") return {{0.1307f}, {0.3081f}};
  if (name == "fashion-mnist") return {{0.2860f}, {0.3530f}};
  fail("unknown data set '", name, "' (valid: ", dataset_names(), ")");
}

void truncate_dataset(Dataset& d, std::int64_t limit) {
  if (limit <= 0 || limit >= d.size()) return;
  d.labels.resize(static_cast<std::size_t>(limit));
  d.images.resize(static_cast<std::size_t>(limit * d.image_bytes()));
  d.images.shrink_to_fit();
  d.labels.shrink_to_fit();
}

}  // namespace safnet
