// IDX reader: plain and gzip round trips, exact size checks, bounded inflation, real Fashion-MNIST.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>

#include "data/dataset.h"
#include "data/idx.h"
#include "host/check.h"
#include "host/file_io.h"
#include "tests/test_dir.h"
#include "tests/skip.h"
#include "tests/error_of.h"

namespace safnet {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir() { return test::fresh_dir("idx").string(); }

void put32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

// Image i pixel k = (i * 5 + k) mod 251; label i = (i * 3) mod 10.
std::vector<std::uint8_t> make_images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols) {
  std::vector<std::uint8_t> b;
  put32(b, kIdxImagesMagic);
  put32(b, n);
  put32(b, rows);
  put32(b, cols);
  for (std::uint32_t i = 0; i < n; ++i)
    for (std::uint32_t k = 0; k < rows * cols; ++k) b.push_back(static_cast<std::uint8_t>((i * 5 + k) % 251));
  return b;
}

std::vector<std::uint8_t> make_labels(std::uint32_t n) {
  std::vector<std::uint8_t> b;
  put32(b, kIdxLabelsMagic);
  put32(b, n);
  for (std::uint32_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(i * 3 % 10));
  return b;
}

std::vector<std::uint8_t> gzip(const std::vector<std::uint8_t>& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<std::uint8_t> out(deflateBound(&zs, in.size()) + 64);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  write_file_atomic(path, b.data(), b.size());
}

using test::error_of;

void expect_generated(const Dataset& d, std::int64_t n, int rows, int cols) {
  EXPECT_EQ(d.channels, 1);
  EXPECT_EQ(d.height, rows);
  EXPECT_EQ(d.width, cols);
  EXPECT_EQ(d.classes, 10);
  ASSERT_EQ(d.size(), n);
  ASSERT_EQ(static_cast<std::int64_t>(d.images.size()), n * rows * cols);
  for (std::int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(d.labels[i], i * 3 % 10);
    for (std::int64_t k = 0; k < rows * cols; ++k)
      ASSERT_EQ(d.images[i * rows * cols + k], (i * 5 + k) % 251) << "image " << i << " pixel " << k;
  }
}

TEST(Idx, PlainRoundTrip) {
  const std::string dir = fresh_dir();
  write_bytes(dir + "/train-images-idx3-ubyte", make_images(7, 4, 3));
  write_bytes(dir + "/train-labels-idx1-ubyte", make_labels(7));
  const Dataset d = load_dataset("mnist", dir, Split::train);
  EXPECT_EQ(d.name, "mnist");
  expect_generated(d, 7, 4, 3);
  ASSERT_EQ(d.class_names.size(), 10u);
  EXPECT_EQ(d.class_names[7], "7");
  expect_generated(load_dataset("mnist", dir, Split::train, 5), 5, 4, 3);
}

TEST(Idx, GzipRoundTripAndMixed) {
  const std::string dir = fresh_dir();
  write_bytes(dir + "/t10k-images-idx3-ubyte.gz", gzip(make_images(300, 28, 28)));
  write_bytes(dir + "/t10k-labels-idx1-ubyte", make_labels(300));
  const Dataset d = load_dataset("fashion-mnist", dir, Split::test);
  expect_generated(d, 300, 28, 28);
  EXPECT_EQ(d.class_names[9], "Ankle boot");

  fs::remove(dir + "/t10k-labels-idx1-ubyte");
  write_bytes(dir + "/t10k-labels-idx1-ubyte.gz", gzip(make_labels(300)));
  expect_generated(load_dataset("fashion-mnist", dir, Split::test), 300, 28, 28);
}

TEST(Idx, ConcatenatedGzipMembersAreOneFile) {
  const std::vector<std::uint8_t> plain = make_labels(50);
  const std::vector<std::uint8_t> head(plain.begin(), plain.begin() + 20), tail(plain.begin() + 20, plain.end());
  std::vector<std::uint8_t> gz = gzip(head);
  const std::vector<std::uint8_t> gz2 = gzip(tail);
  gz.insert(gz.end(), gz2.begin(), gz2.end());
  EXPECT_EQ(gunzip_idx(gz.data(), gz.size(), "x"), plain);
  gz.push_back(0);
  const std::string msg = error_of([&] { gunzip_idx(gz.data(), gz.size(), "some.gz"); });
  EXPECT_NE(msg.find("some.gz: 1 trailing bytes"), std::string::npos) << msg;
}

TEST(Idx, RejectsTruncatedAndOversizedPlainAndGzip) {
  const std::string dir = fresh_dir();
  const std::vector<std::uint8_t> images = make_images(4, 5, 5);
  write_bytes(dir + "/train-labels-idx1-ubyte", make_labels(4));
  for (bool gz : {false, true}) {
    for (int delta : {-1, 1, -90}) {
      std::vector<std::uint8_t> b = images;
      if (delta < 0) b.erase(b.end() + delta, b.end());
      else b.push_back(7);
      const std::string path = dir + "/train-images-idx3-ubyte" + (gz ? ".gz" : "");
      fs::remove(dir + "/train-images-idx3-ubyte");
      fs::remove(dir + "/train-images-idx3-ubyte.gz");
      write_bytes(path, gz ? gzip(b) : b);
      const std::string msg = error_of([&] { load_dataset("mnist", dir, Split::train); });
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      const char* what = delta < 0 ? "truncated" : (gz ? "inflates to more than the 116 bytes" : "oversized");
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }
  fs::remove(dir + "/train-images-idx3-ubyte.gz");
  write_bytes(dir + "/train-images-idx3-ubyte", images);
  std::vector<std::uint8_t> labels = make_labels(4);
  labels.pop_back();
  write_bytes(dir + "/train-labels-idx1-ubyte", labels);
  const std::string msg = error_of([&] { load_dataset("mnist", dir, Split::train); });
  EXPECT_NE(msg.find(dir + "/train-labels-idx1-ubyte: 11 bytes"), std::string::npos) << msg;
}

TEST(Idx, DecompressionBombStopsAtHeaderSizePlusOne) {
  // The header claims 10 labels; the stream inflates to 64 MiB more. Output is capped at 19 bytes.
  std::vector<std::uint8_t> b = make_labels(10);
  b.resize(b.size() + (std::size_t{64} << 20), 0);
  const std::vector<std::uint8_t> gz = gzip(b);
  const std::string msg = error_of([&] { gunzip_idx(gz.data(), gz.size(), "bomb.gz"); });
  EXPECT_NE(msg.find("bomb.gz: inflates to more than the 18 bytes"), std::string::npos) << msg;
}

TEST(Idx, RejectsCorruptAndTruncatedGzip) {
  std::vector<std::uint8_t> gz = gzip(make_labels(1000));
  std::vector<std::uint8_t> cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
  std::string msg = error_of([&] { gunzip_idx(cut.data(), cut.size(), "cut.gz"); });
  EXPECT_NE(msg.find("cut.gz: truncated gzip stream"), std::string::npos) << msg;
  gz[gz.size() - 6] ^= 0xff;  // inside the CRC-32 of the trailer
  msg = error_of([&] { gunzip_idx(gz.data(), gz.size(), "crc.gz"); });
  EXPECT_NE(msg.find("crc.gz: corrupt gzip data"), std::string::npos) << msg;
}

TEST(Idx, RejectsWrongMagicNamingThePath) {
  const std::string dir = fresh_dir();
  write_bytes(dir + "/train-images-idx3-ubyte", make_labels(4));  // label magic where images belong
  write_bytes(dir + "/train-labels-idx1-ubyte", make_labels(4));
  std::string msg = error_of([&] { load_dataset("mnist", dir, Split::train); });
  EXPECT_NE(msg.find(dir + "/train-images-idx3-ubyte: bad magic 0x00000801, expected 0x00000803"),
            std::string::npos)
      << msg;
  std::vector<std::uint8_t> odd = make_images(4, 2, 2);
  odd[2] = 0x0d;  // float elements
  write_bytes(dir + "/train-images-idx3-ubyte.gz", gzip(odd));
  fs::remove(dir + "/train-images-idx3-ubyte");
  msg = error_of([&] { load_dataset("mnist", dir, Split::train); });
  EXPECT_NE(msg.find(dir + "/train-images-idx3-ubyte.gz: bad magic 0x00000d03"), std::string::npos) << msg;
}

TEST(Idx, RejectsBadLabelAndCountMismatch) {
  const std::string dir = fresh_dir();
  write_bytes(dir + "/train-images-idx3-ubyte", make_images(4, 2, 2));
  std::vector<std::uint8_t> labels = make_labels(4);
  labels[8 + 2] = 10;
  write_bytes(dir + "/train-labels-idx1-ubyte", labels);
  std::string msg = error_of([&] { load_dataset("fashion-mnist", dir, Split::train); });
  EXPECT_NE(msg.find(dir + "/train-labels-idx1-ubyte: label 2 is 10"), std::string::npos) << msg;

  write_bytes(dir + "/train-labels-idx1-ubyte", make_labels(5));
  msg = error_of([&] { load_dataset("fashion-mnist", dir, Split::train); });
  EXPECT_NE(msg.find(dir + "/train-images-idx3-ubyte: holds 4 images"), std::string::npos) << msg;
  EXPECT_NE(msg.find("5 labels"), std::string::npos) << msg;
}

TEST(Idx, RejectsEmptyAndShortHeaders) {
  const std::vector<std::uint8_t> none = make_images(0, 28, 28);
  std::string msg = error_of([&] { parse_idx_images(none.data(), none.size(), "none"); });
  EXPECT_NE(msg.find("none: empty images"), std::string::npos) << msg;
  msg = error_of([&] { parse_idx_images(none.data(), 10, "short"); });
  EXPECT_NE(msg.find("short: 10 bytes"), std::string::npos) << msg;
  msg = error_of([&] { parse_idx_labels(none.data(), 0, "zero", 10); });
  EXPECT_NE(msg.find("zero: 0 bytes"), std::string::npos) << msg;
  // A header whose implied size overflows 64 bits is an oversized claim, not a wrap-around.
  std::vector<std::uint8_t> huge;
  put32(huge, kIdxImagesMagic);
  for (int i = 0; i < 3; ++i) put32(huge, 0xffffffffu);
  msg = error_of([&] { parse_idx_images(huge.data(), huge.size(), "huge"); });
  EXPECT_NE(msg.find("huge: "), std::string::npos) << msg;
  const std::vector<std::uint8_t> gz = gzip(huge);
  msg = error_of([&] { gunzip_idx(gz.data(), gz.size(), "huge.gz"); });
  EXPECT_NE(msg.find("huge.gz: header claims more than"), std::string::npos) << msg;
}

TEST(Idx, MissingFilesNameDirectoryAndFiles) {
  const std::string dir = fresh_dir();
  std::string msg = error_of([&] { load_dataset("mnist", dir, Split::test); });
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  EXPECT_NE(msg.find("t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("t10k-labels-idx1-ubyte"), std::string::npos) << msg;
  write_bytes(dir + "/t10k-images-idx3-ubyte.gz", gzip(make_images(1, 1, 1)));
  msg = error_of([&] { load_dataset("mnist", dir, Split::test); });
  EXPECT_NE(msg.find(dir + ": incomplete mnist test data: missing t10k-labels-idx1-ubyte"), std::string::npos)
      << msg;
}

const char* kFashion = "/usr/share/datasets/fashion-mnist";

TEST(Idx, RealFashionMnist) {
  if (!fs::exists(std::string(kFashion) + "/train-labels-idx1-ubyte.gz"))
    SAFNET_SKIP_OR_FAIL("no Fashion-MNIST at " << kFashion);
  const Dataset train = load_dataset("fashion-mnist", kFashion, Split::train);
  ASSERT_EQ(train.size(), 60000);
  EXPECT_EQ(train.height, 28);
  EXPECT_EQ(train.width, 28);
  EXPECT_EQ(train.images.size(), 60000u * 784);
  const std::vector<std::int32_t> first{9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  EXPECT_TRUE(std::equal(first.begin(), first.end(), train.labels.begin()));
  std::vector<int> counts(10);
  for (auto l : train.labels) ++counts[l];
  EXPECT_EQ(counts, std::vector<int>(10, 6000));

  const Dataset test = load_dataset("fashion-mnist", kFashion, Split::test);
  ASSERT_EQ(test.size(), 10000);
  const std::vector<std::int32_t> first_test{9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  EXPECT_TRUE(std::equal(first_test.begin(), first_test.end(), test.labels.begin()));
  // Pixel sums taken independently with Python's gzip module.
  std::int64_t first_sum = 0, total = 0;
  for (std::size_t k = 0; k < test.images.size(); ++k) (k < 784 ? first_sum : total) += test.images[k];
  EXPECT_EQ(first_sum, 33456);
  EXPECT_EQ(first_sum + total, 573469082);
}

}  // namespace
}  // namespace safnet
