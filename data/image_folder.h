// Image folders in the ImageNet layout: listing files and labels, and reading one image through its transform.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace safnet {

// True for names ending in .jpg, .jpeg or .png, in any case.
bool is_image_file_name(const std::string& name);

// The class folder names of a train folder, sorted (a class's index is its position). Hidden
// (dot) folders are not classes.
std::vector<std::string> image_folder_classes(const std::string& train_dir);

// Lines "<file name> <class name or index>" of a flat validation folder's labels.txt, as
// (file name, class index) in file order. `path` only names the file in errors.
std::vector<std::pair<std::string, std::int32_t>> parse_image_labels(const std::string& text, const std::string& path,
                                                                     const std::vector<std::string>& classes);

// Train: DIR/train/<class>/**/<image>. Test: DIR/val/<class>/**/<image> with the train classes,
// or images directly in DIR/val named in DIR/val/labels.txt. Files are listed in torchvision's
// ImageFolder order (classes sorted, then each folder's files sorted, folders in sorted order)
// and not opened: they are decoded per batch. limit > 0 keeps the first `limit`.
Dataset load_image_folder(const std::string& dir, Split split, std::int64_t limit = 0);

// The random part of the train transform, for transform_folder_image.
struct TrainDrawKey {
  std::uint64_t seed = 0;
  int epoch = 0;
};

// Decodes file i of an image-folder set and writes (3, d.height, d.width) u8 to out: the train
// transform (random resized crop and flip drawn from (seed, epoch, i)) when `train` is given,
// else the eval transform (shorter side to d.height * 256 / 224, centre crop). Throws
// safnet::Error naming the file when it cannot be read or decoded.
void transform_folder_image(const Dataset& d, std::int64_t i, const TrainDrawKey* train, std::uint8_t* out);

}  // namespace safnet
