// Data set dispatch by name and the standard per-channel normalisation of each data set.
#include "data/dataset.h"

#include <cstring>
#include <iostream>

#include "data/cifar.h"
#include "data/idx.h"
#include "data/image_folder.h"
#include "host/check.h"

namespace safnet {

const char* dataset_names() { return "cifar10 cifar100 mnist fashion-mnist imagefolder"; }

Dataset load_dataset(const std::string& name, const std::string& dir, Split split, std::int64_t limit) {
  if (name == "cifar10") return load_cifar(CifarKind::cifar10, dir, split, limit);
  if (name == "cifar100") return load_cifar(CifarKind::cifar100, dir, split, limit);
  if (name == "mnist" || name == "fashion-mnist") return load_idx(name, dir, split, limit);
  if (name == "imagefolder") return load_image_folder(dir, split, limit);
  fail("unknown data set '", name, "' (valid: ", dataset_names(), ")");
}

Normalization default_normalization(const std::string& name) {
  // Statistics of each training set over all its pixels. For CIFAR-10 the std is the true
  // per-pixel one (0.247...), not the per-image-averaged 0.2023 that circulates in code.
  if (name == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  if (name == "cifar100") return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
  if (name == "mnist") return {{0.1307f}, {0.3081f}};
  if (name == "fashion-mnist") return {{0.2860f}, {0.3530f}};
  if (name == "imagefolder") return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};  // ImageNet's
  fail("unknown data set '", name, "' (valid: ", dataset_names(), ")");
}

void truncate_dataset(Dataset& d, std::int64_t limit) {
  if (limit <= 0 || limit >= d.size()) return;
  d.labels.resize(static_cast<std::size_t>(limit));
  if (!d.files.empty()) d.files.resize(static_cast<std::size_t>(limit));
  if (!d.images.empty()) d.images.resize(static_cast<std::size_t>(limit * d.image_bytes()));
  d.images.shrink_to_fit();
  d.labels.shrink_to_fit();
  d.files.shrink_to_fit();
}

bool dataset_image(const Dataset& d, std::int64_t i, std::uint8_t* out) {
  if (i < 0 || i >= d.size()) fail("data set '", d.name, "': image ", i, " outside [0, ", d.size(), ")");
  if (d.files.empty()) {
    const std::size_t bytes = static_cast<std::size_t>(d.image_bytes());
    if (d.images.size() != static_cast<std::size_t>(d.size()) * bytes)
      fail("data set '", d.name, "' holds ", d.images.size(), " pixel bytes for ", d.size(), " images");
    std::memcpy(out, d.images.data() + static_cast<std::size_t>(i) * bytes, bytes);
    return true;
  }
  try {
    transform_folder_image(d, i, nullptr, out);
    return true;
  } catch (const Error& e) {
    if (d.bad_images == BadImages::stop) throw;
    std::cerr << "warning: " << e.what() << "; image skipped\n";
    return false;
  }
}

}  // namespace safnet
