// CIFAR-10/100 binary reader: round trips of generated files, rejection of bad files, the real subset.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/cifar.h"
#include "data/dataset.h"
#include "host/check.h"
#include "host/file_io.h"
#include "tests/test_dir.h"
#include "tests/skip.h"
#include "tests/error_of.h"

namespace safnet {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir() { return test::fresh_dir("cifar").string(); }

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  write_file_atomic(path, b.data(), b.size());
}

// Record r of file f: label (f * 7 + r) mod classes, pixel k = (f * 31 + r * 13 + k) mod 256.
std::vector<std::uint8_t> make_cifar(CifarKind kind, int file, int records) {
  const std::size_t rec = cifar_record_bytes(kind);
  std::vector<std::uint8_t> b(rec * records);
  for (int r = 0; r < records; ++r) {
    std::uint8_t* p = b.data() + r * rec;
    const int fine = (file * 7 + r) % (kind == CifarKind::cifar10 ? 10 : 100);
    if (kind == CifarKind::cifar100) *p++ = static_cast<std::uint8_t>(fine / 5);
    *p++ = static_cast<std::uint8_t>(fine);
    for (std::size_t k = 0; k < kCifarPixels; ++k) p[k] = static_cast<std::uint8_t>((file * 31 + r * 13 + k) % 256);
  }
  return b;
}

void expect_record(const Dataset& d, std::int64_t i, int file, int r, int classes) {
  ASSERT_LT(i, d.size());
  EXPECT_EQ(d.labels[i], (file * 7 + r) % classes) << "image " << i;
  for (std::size_t k = 0; k < kCifarPixels; k += 97)
    ASSERT_EQ(d.images[i * kCifarPixels + k], static_cast<std::uint8_t>((file * 31 + r * 13 + k) % 256))
        << "image " << i << " byte " << k;
}

void write_cifar10(const std::string& dir, int records) {
  for (int f = 1; f <= 5; ++f) write_bytes(dir + "/data_batch_" + std::to_string(f) + ".bin", make_cifar(CifarKind::cifar10, f, records));
  write_bytes(dir + "/test_batch.bin", make_cifar(CifarKind::cifar10, 0, records));
}

using test::error_of;

TEST(Cifar, Cifar10RoundTrip) {
  const std::string dir = fresh_dir();
  write_cifar10(dir, 3);
  const Dataset train = load_dataset("cifar10", dir, Split::train);
  EXPECT_EQ(train.name, "cifar10");
  EXPECT_EQ(train.channels, 3);
  EXPECT_EQ(train.height, 32);
  EXPECT_EQ(train.width, 32);
  EXPECT_EQ(train.classes, 10);
  ASSERT_EQ(train.size(), 15);
  ASSERT_EQ(train.images.size(), 15 * kCifarPixels);
  EXPECT_TRUE(train.class_names.empty());
  for (int f = 1; f <= 5; ++f)
    for (int r = 0; r < 3; ++r) expect_record(train, (f - 1) * 3 + r, f, r, 10);
  const Dataset test = load_dataset("cifar10", dir, Split::test);
  ASSERT_EQ(test.size(), 3);
  for (int r = 0; r < 3; ++r) expect_record(test, r, 0, r, 10);
}

TEST(Cifar, Cifar10SubfolderClassNamesAndLimit) {
  const std::string dir = fresh_dir();
  const std::string sub = dir + "/cifar-10-batches-bin";
  fs::create_directories(sub);
  write_cifar10(sub, 4);
  write_file_atomic(sub + "/batches.meta.txt", "a\nb\r\nc \nd\ne\nf\ng\nh\ni\nj\n\n");
  const Dataset d = load_dataset("cifar10", dir, Split::train, 6);
  ASSERT_EQ(d.size(), 6);
  EXPECT_EQ(d.images.size(), 6 * kCifarPixels);
  expect_record(d, 4, 2, 0, 10);
  expect_record(d, 5, 2, 1, 10);
  ASSERT_EQ(d.class_names.size(), 10u);
  EXPECT_EQ(d.class_names[1], "b");
  EXPECT_EQ(d.class_names[2], "c");
  EXPECT_EQ(d.class_names[9], "j");
}

TEST(Cifar, BadClassNamesFileNamesIt) {
  const std::string dir = fresh_dir();
  write_cifar10(dir, 1);
  write_file_atomic(dir + "/batches.meta.txt", "a\nb\n");
  const std::string msg = error_of([&] { load_dataset("cifar10", dir, Split::test); });
  EXPECT_NE(msg.find(dir + "/batches.meta.txt"), std::string::npos) << msg;
}

TEST(Cifar, Cifar100UsesFineLabel) {
  const std::string dir = fresh_dir();
  write_bytes(dir + "/train.bin", make_cifar(CifarKind::cifar100, 1, 120));
  write_bytes(dir + "/test.bin", make_cifar(CifarKind::cifar100, 2, 5));
  const Dataset train = load_dataset("cifar100", dir, Split::train);
  EXPECT_EQ(train.classes, 100);
  ASSERT_EQ(train.size(), 120);
  for (int r = 0; r < 120; ++r) expect_record(train, r, 1, r, 100);
  const Dataset test = load_dataset("cifar100", dir, Split::test);
  ASSERT_EQ(test.size(), 5);
  expect_record(test, 4, 2, 4, 100);
}

TEST(Cifar, Cifar100Subfolder) {
  const std::string dir = fresh_dir();
  fs::create_directories(dir + "/cifar-100-binary");
  write_bytes(dir + "/cifar-100-binary/test.bin", make_cifar(CifarKind::cifar100, 3, 2));
  EXPECT_EQ(load_dataset("cifar100", dir, Split::test).size(), 2);
}

TEST(Cifar, AcceptsAnyWholeNumberOfRecords) {
  std::vector<std::uint8_t> b = make_cifar(CifarKind::cifar10, 0, 1017);
  Dataset d;
  EXPECT_EQ(parse_cifar(b.data(), b.size(), "x", CifarKind::cifar10, d), 1017);
  EXPECT_EQ(d.size(), 1017);
  EXPECT_EQ(parse_cifar(b.data(), b.size(), "x", CifarKind::cifar10, d, 10), 10);
  EXPECT_EQ(d.size(), 1027);
  expect_record(d, 1026, 0, 9, 10);
}

TEST(Cifar, RejectsTruncatedOversizedEmptyNamingThePath) {
  const std::string dir = fresh_dir();
  const std::string path = dir + "/test_batch.bin";
  std::vector<std::uint8_t> b = make_cifar(CifarKind::cifar10, 0, 2);
  for (std::size_t size : {b.size() - 1, b.size() + 1, std::size_t{100}, std::size_t{0}}) {
    std::vector<std::uint8_t> c(size, 0);
    std::copy_n(b.begin(), std::min(size, b.size()), c.begin());
    write_bytes(path, c);
    const std::string msg = error_of([&] { load_dataset("cifar10", dir, Split::test); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(size == 0 ? "empty" : "whole number"), std::string::npos) << msg;
  }
}

TEST(Cifar, RejectsBadLabels) {
  const std::string dir = fresh_dir();
  std::vector<std::uint8_t> b = make_cifar(CifarKind::cifar10, 0, 3);
  b[2 * cifar_record_bytes(CifarKind::cifar10)] = 10;
  write_bytes(dir + "/test_batch.bin", b);
  std::string msg = error_of([&] { load_dataset("cifar10", dir, Split::test); });
  EXPECT_NE(msg.find(dir + "/test_batch.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("record 2"), std::string::npos) << msg;

  std::vector<std::uint8_t> fine = make_cifar(CifarKind::cifar100, 0, 2);
  fine[cifar_record_bytes(CifarKind::cifar100) + 1] = 100;
  write_bytes(dir + "/test.bin", fine);
  msg = error_of([&] { load_dataset("cifar100", dir, Split::test); });
  EXPECT_NE(msg.find(dir + "/test.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("label 100"), std::string::npos) << msg;

  std::vector<std::uint8_t> coarse = make_cifar(CifarKind::cifar100, 0, 2);
  coarse[0] = 20;
  write_bytes(dir + "/test.bin", coarse);
  msg = error_of([&] { load_dataset("cifar100", dir, Split::test); });
  EXPECT_NE(msg.find("coarse label 20"), std::string::npos) << msg;

  // The largest valid labels load.
  coarse[0] = 19;
  coarse[1] = 99;
  Dataset d;
  parse_cifar(coarse.data(), coarse.size(), "x", CifarKind::cifar100, d);
  EXPECT_EQ(d.labels[0], 99);
}

TEST(Cifar, MissingFilesNameDirectoryAndFiles) {
  const std::string dir = fresh_dir();
  std::string msg = error_of([&] { load_dataset("cifar10", dir, Split::train); });
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  EXPECT_NE(msg.find("data_batch_1.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("data_batch_5.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cifar-10-batches-bin"), std::string::npos) << msg;

  write_bytes(dir + "/data_batch_1.bin", make_cifar(CifarKind::cifar10, 1, 1));
  msg = error_of([&] { load_dataset("cifar10", dir, Split::train); });
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing data_batch_2.bin, data_batch_3.bin"), std::string::npos) << msg;

  msg = error_of([&] { load_dataset("cifar100", dir + "/nowhere", Split::test); });
  EXPECT_NE(msg.find(dir + "/nowhere"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no such directory"), std::string::npos) << msg;
}

const std::string kSubset = std::string(SAFNET_SOURCE_DIR) + "/../shared/data/cifar10-subset";

TEST(Cifar, RealSubset) {
  if (!fs::exists(std::string(kSubset) + "/test_batch.bin")) SAFNET_SKIP_OR_FAIL("no CIFAR-10 subset at " << kSubset);
  const Dataset test = load_dataset("cifar10", kSubset, Split::test);
  ASSERT_EQ(test.size(), 1017);
  ASSERT_EQ(test.class_names.size(), 10u);
  EXPECT_EQ(test.class_names[0], "airplane");
  EXPECT_EQ(test.class_names[3], "cat");
  EXPECT_EQ(test.class_names[9], "truck");
  // The first 16 test images, as documented in the subset's README.
  const std::vector<int> first{3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8};
  for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(test.labels[i], first[i]) << "test image " << i;
  std::vector<int> counts(10);
  for (auto l : test.labels) ++counts[l];
  EXPECT_EQ(counts, (std::vector<int>{105, 93, 100, 104, 92, 87, 114, 102, 110, 110}));

  const Dataset train = load_dataset("cifar10", kSubset, Split::train);
  ASSERT_EQ(train.size(), 5085);
  std::vector<int> batch1(10);
  for (int i = 0; i < 1017; ++i) ++batch1[train.labels[i]];
  EXPECT_EQ(batch1, (std::vector<int>{103, 113, 102, 94, 103, 86, 109, 102, 101, 104}));
  std::vector<int> batch5(10);
  for (int i = 4 * 1017; i < 5085; ++i) ++batch5[train.labels[i]];
  EXPECT_EQ(batch5, (std::vector<int>{104, 97, 96, 91, 109, 96, 102, 105, 106, 111}));

  const Dataset few = load_dataset("cifar10", kSubset, Split::train, 1100);
  ASSERT_EQ(few.size(), 1100);
  EXPECT_TRUE(std::equal(few.images.begin(), few.images.end(), train.images.begin()));
  EXPECT_TRUE(std::equal(few.labels.begin(), few.labels.end(), train.labels.begin()));
}

}  // namespace
}  // namespace safnet
