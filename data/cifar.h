// CIFAR-10 and CIFAR-100 binary version: parsing of in-memory files and loading from a directory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace safnet {

enum class CifarKind { cifar10, cifar100 };

constexpr int kCifarSide = 32;
constexpr std::size_t kCifarPixels = 3 * kCifarSide * kCifarSide;  // (3, 32, 32)

// Bytes per record: label byte(s) then the pixels.
std::size_t cifar_record_bytes(CifarKind kind);

// Checks every record of one binary file and appends its images (N, 3, 32, 32) and labels
// (the fine label for CIFAR-100) to `out`, at most `max_records` of them when it is > 0.
// `path` only names the file in errors. Returns the number of records appended.
std::int64_t parse_cifar(const std::uint8_t* data, std::size_t size, const std::string& path, CifarKind kind,
                         Dataset& out, std::int64_t max_records = 0);

// One class name per non-empty line (trailing spaces and '\r' dropped); must give `classes` names.
std::vector<std::string> parse_class_names(const std::string& text, const std::string& path, int classes);

// Reads train (data_batch_1..5.bin / train.bin) or test (test_batch.bin / test.bin) from dir or
// from its cifar-10-batches-bin / cifar-100-binary subfolder.
Dataset load_cifar(CifarKind kind, const std::string& dir, Split split, std::int64_t limit = 0);

}  // namespace safnet
