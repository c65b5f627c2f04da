// CIFAR-10 and CIFAR-100 binary version reader.
#include "data/cifar.h"

#include <cstring>
#include <filesystem>

#include "data/data_files.h"
#include "host/check.h"
#include "host/file_io.h"

namespace safnet {

namespace {
struct CifarInfo {
  const char* name;
  const char* title;
  const char* subdir;
  const char* names_file;
  std::size_t label_bytes;  // CIFAR-100: coarse then fine
  int classes, coarse_classes;
};

CifarInfo info(CifarKind kind) {
  if (kind == CifarKind::cifar10) return {"cifar10", "CIFAR-10", "cifar-10-batches-bin", "batches.meta.txt", 1, 10, 0};
  return {"cifar100", "CIFAR-100", "cifar-100-binary", "fine_label_names.txt", 2, 100, 20};
}
}  // namespace

std::size_t cifar_record_bytes(CifarKind kind) { return info(kind).label_bytes + kCifarPixels; }

std::int64_t parse_cifar(const std::uint8_t* data, std::size_t size, const std::string& path, CifarKind kind,
                         Dataset& out, std::int64_t max_records) {
  const CifarInfo ci = info(kind);
  const std::size_t rec = cifar_record_bytes(kind);
  if (size == 0) fail(path, ": empty ", ci.title, " file");
  if (size % rec != 0)
    fail(path, ": ", size, " bytes is not a whole number of ", ci.title, " records of ", rec, " bytes");
  const std::size_t records = size / rec;
  for (std::size_t r = 0; r < records; ++r) {
    const std::uint8_t* p = data + r * rec;
    if (ci.coarse_classes && p[0] >= ci.coarse_classes)
      fail(path, ": record ", r, ": coarse label ", int(p[0]), " >= ", ci.coarse_classes);
    const int label = p[ci.label_bytes - 1];
    if (label >= ci.classes) fail(path, ": record ", r, ": label ", label, " >= ", ci.classes);
  }
  std::size_t take = records;
  if (max_records > 0 && static_cast<std::size_t>(max_records) < take) take = static_cast<std::size_t>(max_records);
  const std::size_t old = out.images.size();
  out.images.resize(old + take * kCifarPixels);
  out.labels.reserve(out.labels.size() + take);
  for (std::size_t r = 0; r < take; ++r) {
    const std::uint8_t* p = data + r * rec;
    out.labels.push_back(p[ci.label_bytes - 1]);
    std::memcpy(out.images.data() + old + r * kCifarPixels, p + ci.label_bytes, kCifarPixels);
  }
  return static_cast<std::int64_t>(take);
}

std::vector<std::string> parse_class_names(const std::string& text, const std::string& path, int classes) {
  std::vector<std::string> names;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty()) names.push_back(line);
    pos = end + 1;
  }
  if (static_cast<int>(names.size()) != classes)
    fail(path, ": ", names.size(), " class names, expected ", classes);
  return names;
}

Dataset load_cifar(CifarKind kind, const std::string& dir, Split split, std::int64_t limit) {
  const CifarInfo ci = info(kind);
  std::vector<std::vector<std::string>> expected;
  if (kind == CifarKind::cifar10) {
    if (split == Split::train)
      for (int i = 1; i <= 5; ++i) expected.push_back({"data_batch_" + std::to_string(i) + ".bin"});
    else
      expected.push_back({"test_batch.bin"});
  } else {
    expected.push_back({split == Split::train ? "train.bin" : "test.bin"});
  }
  const std::string what = std::string(ci.title) + (split == Split::train ? " train" : " test") + " data";
  const std::vector<std::string> paths = find_data_files(dir, ci.subdir, expected, what);

  Dataset d;
  d.name = ci.name;
  d.channels = 3;
  d.height = d.width = kCifarSide;
  d.classes = ci.classes;
  for (const auto& path : paths) {
    const std::int64_t want = limit > 0 ? limit - d.size() : 0;
    if (limit > 0 && want <= 0) break;
    const std::vector<std::uint8_t> bytes = read_file(path);
    parse_cifar(bytes.data(), bytes.size(), path, kind, d, want);
  }
  const std::string names_path =
      (std::filesystem::path(paths.front()).parent_path() / ci.names_file).string();
  if (file_exists(names_path)) {
    const std::vector<std::uint8_t> bytes = read_file(names_path);
    d.class_names = parse_class_names(std::string(bytes.begin(), bytes.end()), names_path, ci.classes);
  }
  return d;
}

}  // namespace safnet
