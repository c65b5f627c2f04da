// Replays the fuzz corpora (seeds and any input that once crashed) through the parsers.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/cifar.h"
#include "data/idx.h"
#include "host/check.h"
#include "host/file_io.h"
#include "tests/skip.h"

namespace safnet {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> corpus(const std::string& name) {
  std::vector<std::string> files;
#ifdef SAFNET_SOURCE_DIR
  const fs::path dir = fs::path(SAFNET_SOURCE_DIR) / "tests/fuzz/corpus" / name;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) files.push_back(e.path().string());
#endif
  return files;
}

// Each parser either accepts the input or throws safnet::Error; anything else fails the test.
template <typename F>
int accepts(F&& f) {
  try {
    f();
    return 1;
  } catch (const Error&) {
    return 0;
  }
}

TEST(FuzzCorpus, Cifar) {
  const auto files = corpus("cifar");
  if (files.empty()) SAFNET_SKIP_OR_FAIL("no corpus (SAFNET_SOURCE_DIR unset or tests/fuzz/corpus/cifar empty)");
  int ok = 0;
  for (const auto& path : files) {
    const std::vector<std::uint8_t> b = read_file(path);
    for (CifarKind kind : {CifarKind::cifar10, CifarKind::cifar100}) {
      Dataset d;
      ok += accepts([&] { parse_cifar(b.data(), b.size(), path, kind, d); });
    }
  }
  EXPECT_GT(ok, 0) << "no seed parses: the seeds no longer exercise the record loop";
}

TEST(FuzzCorpus, Idx) {
  const auto files = corpus("idx");
  if (files.empty()) SAFNET_SKIP_OR_FAIL("no corpus (SAFNET_SOURCE_DIR unset or tests/fuzz/corpus/idx empty)");
  int ok = 0;
  for (const auto& path : files) {
    std::vector<std::uint8_t> b = read_file(path);
    if (is_gzip(b.data(), b.size()) && !accepts([&] { b = gunzip_idx(b.data(), b.size(), path); })) continue;
    ok += accepts([&] { parse_idx_images(b.data(), b.size(), path); });
    ok += accepts([&] { parse_idx_labels(b.data(), b.size(), path, 10); });
  }
  EXPECT_GT(ok, 0) << "no seed parses: the seeds no longer exercise the parsers";
}

}  // namespace
}  // namespace safnet
