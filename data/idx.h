// IDX files (MNIST, Fashion-MNIST), plain or gzip: bounded decompression, parsing and loading.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace safnet {

constexpr std::uint32_t kIdxImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension
// Larger claims are refused before anything is inflated, whatever the header says.
constexpr std::uint64_t kIdxMaxBytes = std::uint64_t{1} << 32;

bool is_gzip(const std::uint8_t* data, std::size_t size);

// Inflates a gzip-compressed IDX file. Output stops at the size its own IDX header implies
// plus one byte, so a file that inflates to more than it claims (a decompression bomb) fails
// after bounded work and memory. `path` only names the file in errors.
std::vector<std::uint8_t> gunzip_idx(const std::uint8_t* data, std::size_t size, const std::string& path);

struct IdxImages {
  std::int64_t count = 0;
  int rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // (count, rows, cols)
};

// Parse an uncompressed IDX file whose byte count must match its header exactly.
IdxImages parse_idx_images(const std::uint8_t* data, std::size_t size, const std::string& path);
std::vector<std::int32_t> parse_idx_labels(const std::uint8_t* data, std::size_t size, const std::string& path,
                                           int classes);

// Reads train-{images-idx3,labels-idx1}-ubyte or t10k-... (each plain or .gz) from dir.
// `name` is mnist or fashion-mnist and sets the class names.
Dataset load_idx(const std::string& name, const std::string& dir, Split split, std::int64_t limit = 0);

}  // namespace safnet
