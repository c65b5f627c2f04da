// Prefetching loader: coverage, determinism, drop_last, normalisation, augmentation, shutdown, image folders.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <memory>
#include <numeric>
#include <filesystem>

#include "data/image_decode.h"
#include "data/image_transforms.h"
#include "data/loader.h"
#include "host/check.h"
#include "tests/data/image_test_util.h"

namespace safnet {
namespace {

// n images of (2, 3, 4): pixel k of image i is (i * 7 + k) mod 256, label i mod 10.
std::shared_ptr<Dataset> toy(std::int64_t n, int channels = 2, int h = 3, int w = 4) {
  auto d = std::make_shared<Dataset>();
  d->name = "toy";
  d->channels = channels;
  d->height = h;
  d->width = w;
  d->classes = 10;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t k = 0; k < d->image_bytes(); ++k) d->images.push_back(static_cast<std::uint8_t>((i * 7 + k) % 256));
    d->labels.push_back(static_cast<std::int32_t>(i % 10));
  }
  return d;
}

const Normalization kNorm{{0.25f, 0.5f}, {0.5f, 0.125f}};

std::vector<Batch> epoch(Loader& l, int e) {
  l.start_epoch(e);
  std::vector<Batch> out;
  Batch b;
  while (l.next(b)) out.push_back(std::move(b));
  return out;
}

std::vector<std::int64_t> indices(const std::vector<Batch>& bs) {
  std::vector<std::int64_t> v;
  for (const auto& b : bs) v.insert(v.end(), b.indices.begin(), b.indices.end());
  return v;
}

bool same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].indices != b[i].indices || a[i].labels != b[i].labels) return false;
    if (a[i].images.shape() != b[i].images.shape()) return false;
    if (std::memcmp(a[i].images.raw(), b[i].images.raw(), a[i].images.nbytes()) != 0) return false;
  }
  return true;
}

// Worst-case float error of (v / 255 - m) / s: half an ulp from each of the three roundings.
double norm_tolerance(double expected, double s) { return std::ldexp(1.0, -23) / s + std::ldexp(1.0, -24) * std::fabs(expected); }

// Checks that image i of batch b is image idx of d after `draw`, normalised.
void expect_image(const Dataset& d, const Batch& b, std::int64_t i, const AugmentDraw& draw) {
  const std::int64_t img = d.image_bytes(), plane = static_cast<std::int64_t>(d.height) * d.width;
  std::vector<std::uint8_t> px(static_cast<std::size_t>(img));
  apply_augment(d.images.data() + b.indices[i] * img, px.data(), d.channels, d.height, d.width, draw);
  const float* got = b.images.data<float>() + i * img;
  for (std::int64_t k = 0; k < img; ++k) {
    const int c = static_cast<int>(k / plane);
    const double want = (px[k] / 255.0 - kNorm.mean[c]) / kNorm.std[c];
    ASSERT_NEAR(got[k], want, norm_tolerance(want, kNorm.std[c])) << "index " << b.indices[i] << " byte " << k;
  }
}

TEST(Loader, CoversEachImageOncePerEpoch) {
  auto d = toy(103);
  Loader l(*d, 10, true, 42, {}, kNorm, false);
  EXPECT_EQ(l.batches_per_epoch(), 11);
  for (int e = 0; e < 3; ++e) {
    const std::vector<Batch> bs = epoch(l, e);
    ASSERT_EQ(bs.size(), 11u);
    EXPECT_EQ(bs.back().indices.size(), 3u);
    EXPECT_EQ(bs.back().images.shape(), (Shape{3, 2, 3, 4}));
    EXPECT_EQ(bs.front().images.shape(), (Shape{10, 2, 3, 4}));
    std::vector<std::int64_t> idx = indices(bs);
    std::sort(idx.begin(), idx.end());
    std::vector<std::int64_t> all(103);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(idx, all) << "epoch " << e;
    for (const auto& b : bs)
      for (std::size_t i = 0; i < b.indices.size(); ++i) EXPECT_EQ(b.labels[i], b.indices[i] % 10);
  }
}

TEST(Loader, NormalisesEveryPixelByteValue) {
  // 2 images x 2 channels x 128 pixels = every byte value in every channel.
  auto d = toy(2, 2, 8, 16);
  for (std::int64_t i = 0; i < 2; ++i)
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < 128; ++k) d->images[(i * 2 + c) * 128 + k] = static_cast<std::uint8_t>(i * 128 + k);
  Loader l(*d, 2, false, 0, {}, kNorm, false);
  const std::vector<Batch> bs = epoch(l, 0);
  ASSERT_EQ(bs.size(), 1u);
  EXPECT_EQ(bs[0].indices, (std::vector<std::int64_t>{0, 1}));
  expect_image(*d, bs[0], 0, {});
  expect_image(*d, bs[0], 1, {});
  // Spot values: byte 0 in channel 1 is -0.5 / 0.125 = -4; byte 255 in channel 0 is 1.5.
  EXPECT_FLOAT_EQ(bs[0].images.data<float>()[128], -4.0f);
  EXPECT_FLOAT_EQ(bs[0].images.data<float>()[256 + 127], 1.5f);
}

TEST(Loader, SameSeedGivesIdenticalBatches) {
  auto d = toy(57);
  const AugmentConfig aug{2, true};
  Loader a(*d, 8, true, 99, aug, kNorm, false), b(*d, 8, true, 99, aug, kNorm, false);
  EXPECT_TRUE(same_batches(epoch(a, 5), epoch(b, 5)));
  // Restarting an epoch reproduces it too.
  EXPECT_TRUE(same_batches(epoch(a, 2), epoch(a, 2)));
  Loader c(*d, 8, true, 100, aug, kNorm, false);
  EXPECT_FALSE(same_batches(epoch(a, 5), epoch(c, 5)));
}

TEST(Loader, DifferentEpochsGiveDifferentOrders) {
  auto d = toy(200);
  Loader l(*d, 16, true, 3, {}, kNorm, false);
  const auto e0 = indices(epoch(l, 0)), e1 = indices(epoch(l, 1));
  EXPECT_NE(e0, e1);
  EXPECT_EQ(e0, l.epoch_order(0));
  EXPECT_EQ(e1, l.epoch_order(1));
  // A uniform permutation of 200 fixes about one point; a near-identity order means no shuffle.
  int fixed = 0;
  for (std::size_t i = 0; i < e0.size(); ++i) fixed += e0[i] == static_cast<std::int64_t>(i);
  EXPECT_LT(fixed, 20);

  Loader plain(*d, 16, false, 3, {}, kNorm, false);
  std::vector<std::int64_t> all(200);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(indices(epoch(plain, 0)), all);
  EXPECT_EQ(indices(epoch(plain, 7)), all);
}

TEST(Loader, DropLast) {
  auto d = toy(103);
  Loader l(*d, 10, true, 1, {}, kNorm, true);
  EXPECT_EQ(l.batches_per_epoch(), 10);
  const std::vector<Batch> bs = epoch(l, 0);
  ASSERT_EQ(bs.size(), 10u);
  for (const auto& b : bs) EXPECT_EQ(b.indices.size(), 10u);
  std::vector<std::int64_t> idx = indices(bs);
  std::sort(idx.begin(), idx.end());
  EXPECT_EQ(std::adjacent_find(idx.begin(), idx.end()), idx.end());
  // What is dropped is the tail of the epoch's permutation.
  const std::vector<std::int64_t> order = l.epoch_order(0);
  EXPECT_TRUE(std::equal(order.begin(), order.begin() + 100, indices(bs).begin()));

  auto hundred = toy(100);
  Loader exact(*hundred, 10, false, 1, {}, kNorm, true);
  EXPECT_EQ(exact.batches_per_epoch(), 10);
  auto small = toy(7);
  Loader none(*small, 10, true, 1, {}, kNorm, true);
  EXPECT_EQ(none.batches_per_epoch(), 0);
  EXPECT_TRUE(epoch(none, 0).empty());
}

TEST(Loader, AugmentationDependsOnlyOnSeedEpochAndIndex) {
  auto d = toy(40, 3, 6, 5);
  const Normalization norm{{0.25f, 0.5f, 0.0f}, {0.5f, 0.125f, 1.0f}};
  const AugmentConfig aug{2, true};
  Loader small(*d, 3, true, 11, aug, norm, false), big(*d, 16, false, 11, aug, norm, false);
  const std::vector<Batch> a = epoch(small, 4), b = epoch(big, 4);
  const std::int64_t img = d->image_bytes();
  // Gather each index's image from both runs: batch size and order must not change it.
  std::vector<const float*> from_a(40), from_b(40);
  for (const auto& bt : a)
    for (std::size_t i = 0; i < bt.indices.size(); ++i) from_a[bt.indices[i]] = bt.images.data<float>() + i * img;
  for (const auto& bt : b)
    for (std::size_t i = 0; i < bt.indices.size(); ++i) from_b[bt.indices[i]] = bt.images.data<float>() + i * img;
  int augmented = 0;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(from_a[i] && from_b[i]);
    EXPECT_EQ(std::memcmp(from_a[i], from_b[i], img * sizeof(float)), 0) << "index " << i;
    const AugmentDraw dr = draw_augment(aug, 11, 4, i);
    augmented += dr.dx != 0 || dr.dy != 0 || dr.flip;
  }
  // P(identity draw) = 1/50; 40 identity draws would mean augmentation is off.
  EXPECT_GT(augmented, 20);
}

TEST(Loader, ImagesAreTheirDrawThenNormalisation) {
  // Pads of 5 on 3x4 images also give shifts that move the whole image out of view.
  auto d = toy(60);
  for (const AugmentConfig aug : {AugmentConfig{1, true}, AugmentConfig{5, true}, AugmentConfig{5, false},
                                  AugmentConfig{0, true}}) {
    Loader l(*d, 7, true, 5, aug, kNorm, false);
    for (const auto& b : epoch(l, 2))
      for (std::size_t i = 0; i < b.indices.size(); ++i)
        expect_image(*d, b, i, draw_augment(aug, 5, 2, b.indices[i]));
  }
}

template <typename F>
bool finishes_within(F f, std::chrono::seconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> fut = done->get_future();
  std::thread([f = std::move(f), done]() mutable {
    f();
    done->set_value();
  }).detach();
  return fut.wait_for(limit) == std::future_status::ready;
}

TEST(Loader, DestructionMidEpochDoesNotHang) {
  auto d = toy(5000);
  EXPECT_TRUE(finishes_within(
      [d] {
        auto l = std::make_unique<Loader>(*d, 4, true, 1, AugmentConfig{1, true}, kNorm, false);
        l->start_epoch(0);
        Batch b;
        l->next(b);
        l.reset();
        auto m = std::make_unique<Loader>(*d, 4, true, 1, AugmentConfig{}, kNorm, false);
        m->start_epoch(0);
        m.reset();
        Loader never(*d, 4, true, 1, {}, kNorm, false);
      },
      std::chrono::seconds(30)));
}

TEST(Loader, RestartMidEpochGivesAFullEpoch) {
  auto d = toy(50);
  Loader l(*d, 4, true, 8, {}, kNorm, false);
  l.start_epoch(0);
  Batch b;
  ASSERT_TRUE(l.next(b));
  ASSERT_TRUE(l.next(b));
  EXPECT_EQ(indices(epoch(l, 1)), l.epoch_order(1));
  EXPECT_FALSE(l.next(b));
  EXPECT_FALSE(l.next(b));
}

TEST(Loader, RejectsBadArguments) {
  auto d = toy(10);
  EXPECT_THROW(Loader(*d, 0, true, 1, {}, kNorm, false), Error);
  EXPECT_THROW(Loader(*d, 4, true, 1, {-1, false}, kNorm, false), Error);
  EXPECT_THROW(Loader(*d, 4, true, 1, {}, Normalization{{0.5f}, {0.5f}}, false), Error);
  EXPECT_THROW(Loader(*d, 4, true, 1, {}, Normalization{{0.5f, 0.5f}, {0.5f, 0.0f}}, false), Error);
  Loader l(*d, 4, true, 1, {}, kNorm, false);
  Batch b;
  EXPECT_THROW(l.next(b), Error);
}


// Image-folder sets: a tree of JPEG and PNG files of various kinds and sizes, loaded lazily.
namespace fs = std::filesystem;
const Normalization kImageNorm{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};

// Nine readable images over two classes (grey and CMYK JPEGs, one smaller than the crop), plus
// `bad` unreadable files named bad<k>.jpg placed first in class "a".
Dataset image_tree(const std::string& tag, int bad = 0) {
  const fs::path root = test::fresh_dir(tag);
  for (int k = 0; k < bad; ++k)
    test::write_bytes(root / "train/a" / ("bad" + std::to_string(k) + ".jpg"), {'n', 'o', 'p', 'e'});
  for (int k = 0; k < 5; ++k) test::write_bytes(root / "train/a" / ("j" + std::to_string(k) + ".jpg"), test::rgb_jpeg(24 + 8 * k, 40, k));
  test::write_bytes(root / "train/b/p0.png", test::rgb_png(3, 2, 7));
  test::write_bytes(root / "train/b/p1.png", test::rgb_png(50, 31, 8));
  test::JpegSpec grey;
  grey.height = grey.width = 16;
  grey.channels = 1;
  grey.in_space = grey.file_space = JCS_GRAYSCALE;
  test::write_bytes(root / "train/b/grey.jpg", test::encode_jpeg(test::block_image(16, 16, 9, 1), grey));
  test::JpegSpec cmyk;
  cmyk.height = cmyk.width = 16;
  cmyk.channels = 4;
  cmyk.in_space = cmyk.file_space = JCS_CMYK;
  test::write_bytes(root / "train/b/cmyk.jpg", test::encode_jpeg(test::block_image(16, 16, 10, 4), cmyk));
  return load_dataset("imagefolder", root.string(), Split::train);
}

// Image i of batch b against the u8 view `px` (C, H, W), normalised with kImageNorm.
void expect_normalised(const Dataset& d, const Batch& b, std::size_t i, const std::vector<std::uint8_t>& px) {
  const std::int64_t img = d.image_bytes(), plane = static_cast<std::int64_t>(d.height) * d.width;
  const float* got = b.images.data<float>() + static_cast<std::int64_t>(i) * img;
  for (std::int64_t k = 0; k < img; ++k) {
    const int c = static_cast<int>(k / plane);
    const double want = (px[k] / 255.0 - kImageNorm.mean[c]) / kImageNorm.std[c];
    ASSERT_NEAR(got[k], want, norm_tolerance(want, kImageNorm.std[c])) << "index " << b.indices[i] << " byte " << k;
  }
}

TEST(LoaderImageFolder, EvalBatchesAreTheNormalisedEvalView) {
  const Dataset d = image_tree("eval");
  ASSERT_EQ(d.size(), 9);
  Loader l(d, 4, true, 6, {}, kImageNorm, false, 3);
  EXPECT_EQ(l.decode_threads(), 3);
  const std::vector<Batch> bs = epoch(l, 0);
  ASSERT_EQ(bs.size(), 3u);
  EXPECT_EQ(bs[0].images.shape(), (Shape{4, 3, 224, 224}));
  EXPECT_EQ(indices(bs), l.epoch_order(0));
  std::vector<std::uint8_t> px(static_cast<std::size_t>(d.image_bytes()));
  for (const auto& b : bs)
    for (std::size_t i = 0; i < b.indices.size(); ++i) {
      EXPECT_EQ(b.labels[i], d.labels[static_cast<std::size_t>(b.indices[i])]);
      ASSERT_TRUE(dataset_image(d, b.indices[i], px.data()));
      expect_normalised(d, b, i, px);
    }
}

TEST(LoaderImageFolder, TrainTransformDependsOnlyOnSeedEpochAndIndex) {
  const Dataset d = image_tree("train");
  AugmentConfig aug;
  aug.resized_crop = true;
  Loader one(d, 2, true, 17, aug, kImageNorm, false, 1), many(d, 5, false, 17, aug, kImageNorm, false, 4);
  const std::vector<Batch> a = epoch(one, 3), b = epoch(many, 3);
  const std::int64_t img = d.image_bytes();
  std::vector<const float*> from_a(9), from_b(9);
  for (const auto& bt : a)
    for (std::size_t i = 0; i < bt.indices.size(); ++i) from_a[bt.indices[i]] = bt.images.data<float>() + i * img;
  for (const auto& bt : b)
    for (std::size_t i = 0; i < bt.indices.size(); ++i) from_b[bt.indices[i]] = bt.images.data<float>() + i * img;
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(from_a[i] && from_b[i]);
    EXPECT_EQ(std::memcmp(from_a[i], from_b[i], img * sizeof(float)), 0) << "index " << i;
  }
  // Each image is its own draw's crop and flip of the decoded file.
  std::vector<std::uint8_t> px(static_cast<std::size_t>(img));
  for (const auto& bt : b)
    for (std::size_t i = 0; i < bt.indices.size(); ++i) {
      const Image im = decode_image(d.files[bt.indices[i]]);
      train_transform(im, draw_resized_crop(17, 3, bt.indices[i], im.height, im.width, true), kTrainCrop, px.data());
      expect_normalised(d, bt, i, px);
    }
  // Another epoch draws other crops.
  const std::vector<Batch> c = epoch(many, 4);
  int differ = 0;
  for (std::size_t k = 0; k < b.size(); ++k) differ += std::memcmp(b[k].images.raw(), c[k].images.raw(), b[k].images.nbytes()) != 0;
  EXPECT_GT(differ, 0);
}

TEST(LoaderImageFolder, SkipLeavesBadImagesOutAndWarnsOncePerFile) {
  Dataset d = image_tree("skip", 2);
  ASSERT_EQ(d.size(), 11);
  d.bad_images = BadImages::skip;
  Loader l(d, 3, true, 2, {}, kImageNorm, false, 2);
  ::testing::internal::CaptureStderr();
  std::vector<std::vector<Batch>> epochs{epoch(l, 0), epoch(l, 1)};
  const std::string err = ::testing::internal::GetCapturedStderr();
  for (const auto& bs : epochs) {
    std::vector<std::int64_t> got = indices(bs), want;
    for (std::int64_t i : l.epoch_order(&bs == &epochs[0] ? 0 : 1))
      if (d.files[i].find("bad") == std::string::npos) want.push_back(i);
    EXPECT_EQ(got, want);
    std::int64_t images = 0;
    for (const auto& b : bs) {
      EXPECT_EQ(b.images.dim(0), static_cast<std::int64_t>(b.indices.size()));
      images += b.images.dim(0);
    }
    EXPECT_EQ(images, 9);
  }
  for (int k = 0; k < 2; ++k) {
    const std::string line = "warning: " + d.files[k] + ": not a JPEG or PNG image";
    const std::size_t first = err.find(line);
    EXPECT_NE(first, std::string::npos) << err;
    EXPECT_EQ(err.find(line, first + 1), std::string::npos) << "warned twice: " << err;
  }
}

TEST(LoaderImageFolder, StopRethrowsTheErrorNamingTheFile) {
  Dataset d = image_tree("stop", 1);
  Loader l(d, 4, true, 5, {}, kImageNorm, false, 2);
  l.start_epoch(0);
  Batch b;
  try {
    while (l.next(b)) {
    }
    ADD_FAILURE() << "the epoch ended without an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d.files[0] + ": not a JPEG or PNG image"), std::string::npos) << e.what();
  }
}

TEST(LoaderImageFolder, ABatchOfOnlyBadImagesIsNotDelivered) {
  Dataset d = image_tree("allbad", 2);
  d.bad_images = BadImages::skip;
  ::testing::internal::CaptureStderr();
  Loader l(d, 2, false, 0, {}, kImageNorm, false, 2);
  const std::vector<Batch> bs = epoch(l, 0);
  ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(bs.size(), 5u);  // batch {bad0, bad1} dropped, then 9 images in batches of 2
  EXPECT_EQ(bs[0].indices, (std::vector<std::int64_t>{2, 3}));
}

TEST(LoaderImageFolder, RejectsBadArguments) {
  auto mem = toy(4);
  AugmentConfig aug;
  aug.resized_crop = true;
  EXPECT_THROW(Loader(*mem, 2, true, 1, aug, kNorm, false), Error);
  EXPECT_THROW(Loader(*mem, 2, true, 1, {}, kNorm, false, -1), Error);
  Dataset d = image_tree("args");
  d.files.pop_back();
  EXPECT_THROW(Loader(d, 2, true, 1, {}, kImageNorm, false), Error);
  Loader fine(*mem, 2, true, 1, {}, kNorm, false);
  EXPECT_GE(fine.decode_threads(), 1);
}

}  // namespace
}  // namespace safnet
