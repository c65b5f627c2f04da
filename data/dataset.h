// Image classification data sets in memory, and the loader entry point by data set name.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace safnet {

enum class Split { train, test };

// What reading an unreadable image file does: stop with an error naming it, or warn and skip it.
enum class BadImages { stop, skip };

struct Dataset {
  std::string name;  // cifar10 cifar100 mnist fashion-mnist imagefolder
  int channels = 0, height = 0, width = 0, classes = 0;
  std::vector<std::uint8_t> images;      // (N, C, H, W)
  std::vector<std::int32_t> labels;      // (N)
  std::vector<std::string> class_names;  // (classes) or empty
  // Image-folder sets: one file per image, decoded per batch (`images` stays empty); C, H, W
  // are then the size after the transforms.
  std::vector<std::string> files;  // (N)
  BadImages bad_images = BadImages::stop;
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  std::int64_t image_bytes() const { return static_cast<std::int64_t>(channels) * height * width; }
};

// The names load_dataset accepts, space separated, for error messages and --help.
const char* dataset_names();

// Loads `split` of the named data set from dir. An unknown name is an error listing the valid
// names. limit > 0 keeps only the first `limit` images.
Dataset load_dataset(const std::string& name, const std::string& dir, Split split, std::int64_t limit = 0);

// Per channel, on [0, 1] pixel values.
struct Normalization {
  std::vector<float> mean, std;
};
Normalization default_normalization(const std::string& name);

// Drops every image after the first `limit` (limit <= 0 keeps all).
void truncate_dataset(Dataset& d, std::int64_t limit);

// The eval view of image i as (C, H, W) u8: a copy for in-memory sets, decode + eval_transform
// for image folders. Returns false (after one warning on stderr naming the file) when the image
// is unreadable and the policy is skip; throws safnet::Error naming the file when it is stop.
bool dataset_image(const Dataset& d, std::int64_t i, std::uint8_t* out);

}  // namespace safnet
