// Resampling against PIL and a float reference; torchvision's resize, centre-crop and random-resized-crop geometry.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "data/image_transforms.h"
#include "host/check.h"
#include "tests/data/image_test_util.h"

namespace safnet {
namespace {

// (H, W, 3) with pixel (y, x, c) = f(y, x, c).
template <typename F>
Image make_image(int h, int w, F f) {
  Image im;
  im.height = h;
  im.width = w;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) im.pixels.push_back(static_cast<std::uint8_t>(f(y, x, c)));
  return im;
}

Image pil_test_image() {
  return make_image(5, 7, [](int y, int x, int c) { return (y * 53 + x * 29 + c * 101 + (x * y) % 7 * 11) % 256; });
}

std::uint8_t at(const Image& im, int y, int x, int c) {
  return im.pixels[(static_cast<std::size_t>(y) * im.width + x) * 3 + c];
}

// Antialiased bilinear resampling in double, no intermediate rounding: for each output the
// triangle filter widened by max(1, scale), over every input, normalised.
std::vector<double> taps_reference(int in, int out, int o) {
  const double scale = static_cast<double>(in) / out, fs = std::max(scale, 1.0), center = (o + 0.5) * scale;
  std::vector<double> w(static_cast<std::size_t>(in));
  double sum = 0;
  for (int i = 0; i < in; ++i) {
    const double t = std::fabs((i + 0.5 - center) / fs);
    w[i] = t < 1 ? 1 - t : 0;
    sum += w[i];
  }
  for (auto& v : w) v /= sum;
  return w;
}

double resize_reference(const Image& im, int oh, int ow, int c, int oy, int ox) {
  const std::vector<double> wy = taps_reference(im.height, oh, oy), wx = taps_reference(im.width, ow, ox);
  double v = 0;
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) v += wy[y] * wx[x] * at(im, y, x, c);
  return v;
}

TEST(ImageTransforms, ResizeMatchesPil) {
  const Image im = pil_test_image();
  // Image.fromarray(a).resize((4, 3), Image.BILINEAR), channels first.
  const std::vector<std::uint8_t> down_pil{40,  93,  155, 150, 130, 122, 130, 87,  148, 53,  86,  131,
                                           141, 163, 146, 122, 109, 93,  99,  154, 68,  132, 158, 94,
                                           183, 68,  101, 153, 109, 153, 159, 124, 169, 192, 62,  77};
  std::vector<std::uint8_t> down(3 * 3 * 4);
  resize_region(im, 0, 0, 5, 7, 3, 4, down.data());
  EXPECT_EQ(down, down_pil);
  // .resize((10, 8)): row 3 of each channel.
  const std::vector<std::uint8_t> up_row3_pil{89,  116, 149, 182, 101, 116, 221, 130, 84,  66,
                                              190, 120, 74,  107, 89,  75,  74,  107, 141, 167,
                                              115, 98,  95,  128, 161, 176, 175, 208, 163, 92};
  std::vector<std::uint8_t> up(3 * 8 * 10);
  resize_region(im, 0, 0, 5, 7, 8, 10, up.data());
  std::vector<std::uint8_t> row3;
  for (int c = 0; c < 3; ++c) row3.insert(row3.end(), &up[c * 80 + 30], &up[c * 80 + 40]);
  EXPECT_EQ(row3, up_row3_pil);
  long sum = 0;
  for (auto v : up) sum += v;
  EXPECT_EQ(sum, 29004);
}

TEST(ImageTransforms, ResizeWithinOneOfTheExactFilter) {
  // Two passes, each rounding to 8 bits (0.5 each, the second pass's weights summing to 1),
  // plus 2^-22 weight quantisation: |got - exact| <= 1 + a few 2^-22 * 255 * taps.
  const Image im = make_image(37, 23, [](int y, int x, int c) { return (y * y * 7 + x * 13 + c * 50 + x * y) % 256; });
  const double tol = 1.0 + 1e-3;
  for (auto [oh, ow] : {std::pair{37, 23}, {11, 5}, {64, 70}, {3, 40}, {1, 1}}) {
    std::vector<std::uint8_t> out(3 * static_cast<std::size_t>(oh) * ow);
    resize_region(im, 0, 0, 37, 23, oh, ow, out.data());
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < oh; ++y)
        for (int x = 0; x < ow; ++x)
          ASSERT_NEAR(out[(static_cast<std::size_t>(c) * oh + y) * ow + x], resize_reference(im, oh, ow, c, y, x), tol)
              << oh << "x" << ow << " at " << c << "," << y << "," << x;
  }
}

TEST(ImageTransforms, SameSizeIsACopyAndRegionsCropFirst) {
  const Image im = make_image(9, 12, [](int y, int x, int c) { return y * 20 + x * 3 + c; });
  std::vector<std::uint8_t> out(3 * 4 * 5);
  resize_region(im, 2, 6, 4, 5, 4, 5, out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 5; ++x) EXPECT_EQ(out[(c * 4 + y) * 5 + x], at(im, 2 + y, 6 + x, c));
  // Downscaling a region sees only the region: a region of one flat colour stays that colour
  // although the pixels around it differ.
  Image framed = make_image(10, 10, [](int y, int x, int) { return y >= 2 && y < 8 && x >= 3 && x < 9 ? 77 : 250; });
  std::vector<std::uint8_t> small(3 * 2 * 2);
  resize_region(framed, 2, 3, 6, 6, 2, 2, small.data());
  for (auto v : small) EXPECT_EQ(v, 77);
  EXPECT_THROW(resize_region(framed, 5, 5, 6, 6, 2, 2, small.data()), Error);
}

TEST(ImageTransforms, EvalResizeAndCentreCropGeometry) {
  // 256 x 341: the shorter side is already 256, so the resize is the identity and the crop
  // starts at ((256 - 224) / 2, round-half-even((341 - 224) / 2 = 58.5) = 58), as torchvision.
  const Image wide = make_image(256, 341, [](int y, int x, int c) { return (y * 3 + x * 7 + c * 11) % 256; });
  std::vector<std::uint8_t> out(3 * 224 * 224);
  eval_transform(wide, kEvalResize, kEvalCrop, out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 224; y += 37)
      for (int x = 0; x < 224; x += 13) ASSERT_EQ(out[(c * 224 + y) * 224 + x], at(wide, 16 + y, 58 + x, c));
  const Image tall = make_image(341, 256, [&](int y, int x, int c) { return at(wide, x, y, c); });
  eval_transform(tall, kEvalResize, kEvalCrop, out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 224; y += 41)
      for (int x = 0; x < 224; x += 17) ASSERT_EQ(out[(c * 224 + y) * 224 + x], at(wide, 16 + x, 58 + y, c));

  // 300 x 400 resizes to 256 x int(256 * 400 / 300) = 256 x 341, the resampled image cropped.
  const Image big = make_image(300, 400, [](int y, int x, int c) { return (y * 5 + x * 2 + c * 40) % 256; });
  std::vector<std::uint8_t> full(3 * 256 * 341);
  resize_region(big, 0, 0, 300, 400, 256, 341, full.data());
  eval_transform(big, kEvalResize, kEvalCrop, out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 224; ++y)
      for (int x = 0; x < 224; ++x)
        ASSERT_EQ(out[(c * 224 + y) * 224 + x], full[(c * 256 + 16 + y) * 341 + 58 + x]) << c << "," << y << "," << x;
}

TEST(ImageTransforms, ImagesSmallerThanTheCrop) {
  // A 3 x 2 flat image is upsampled to fill the crop: every output pixel is its colour.
  const Image tiny = make_image(3, 2, [](int, int, int c) { return 100 + c; });
  std::vector<std::uint8_t> out(3 * 224 * 224);
  eval_transform(tiny, kEvalResize, kEvalCrop, out.data());
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 224 * 224; ++k) ASSERT_EQ(out[c * 224 * 224 + k], 100 + c);
  // A crop larger than the resized image pads with zeros as torchvision does: left/top
  // (6 - 4) / 2 = 1, right/bottom the rest.
  const Image four = make_image(4, 4, [](int y, int x, int) { return 1 + y * 4 + x; });
  std::vector<std::uint8_t> pad(3 * 6 * 6);
  eval_transform(four, 4, 6, pad.data());
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 6; ++x) {
      const bool inside = y >= 1 && y < 5 && x >= 1 && x < 5;
      EXPECT_EQ(pad[y * 6 + x], inside ? 1 + (y - 1) * 4 + (x - 1) : 0) << y << "," << x;
    }
  // The train transform of a 1 x 1 image is that pixel everywhere.
  const Image one = make_image(1, 1, [](int, int, int c) { return 9 * c + 1; });
  const ResizedCropDraw d = draw_resized_crop(1, 0, 0, 1, 1, true);
  EXPECT_EQ(d.height, 1);
  EXPECT_EQ(d.width, 1);
  train_transform(one, d, kTrainCrop, out.data());
  for (int c = 0; c < 3; ++c) EXPECT_EQ(out[c * 224 * 224 + 5000], 9 * c + 1);
}

TEST(ImageTransforms, ResizedCropDrawIsDeterministicAndInRange) {
  const int h = 1000, w = 1000;
  int flips = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    const ResizedCropDraw d = draw_resized_crop(42, 3, i, h, w, true);
    const ResizedCropDraw again = draw_resized_crop(42, 3, i, h, w, true);
    ASSERT_EQ(d.top, again.top);
    ASSERT_EQ(d.left, again.left);
    ASSERT_EQ(d.height, again.height);
    ASSERT_EQ(d.width, again.width);
    ASSERT_EQ(d.flip, again.flip);
    ASSERT_TRUE(d.top >= 0 && d.left >= 0 && d.top + d.height <= h && d.left + d.width <= w);
    // Sides of at least sqrt(0.08e6 * 3/4) = 245 pixels: rounding each side by 0.5 moves the
    // ratio by at most a factor (1 + 0.5/245)^2 < 1.0041, and the area likewise.
    const double ratio = static_cast<double>(d.width) / d.height, area = static_cast<double>(d.width) * d.height;
    ASSERT_GE(ratio, 0.75 / 1.0041) << i;
    ASSERT_LE(ratio, 4.0 / 3.0 * 1.0041) << i;
    ASSERT_GE(area, 0.08 * h * w / 1.0041) << i;
    flips += d.flip;
  }
  // Binomial(2000, 1/2): 5 standard deviations = 5 * sqrt(500) < 112.
  EXPECT_LT(std::abs(flips - n / 2), 112);
  // Other keys give other regions.
  int same = 0;
  for (int i = 0; i < 100; ++i) {
    const ResizedCropDraw a = draw_resized_crop(42, 3, i, h, w, false), b = draw_resized_crop(42, 4, i, h, w, false);
    same += a.top == b.top && a.left == b.left && a.height == b.height;
  }
  EXPECT_LT(same, 5);
}

TEST(ImageTransforms, ResizedCropFallsBackToAClampedCentreCrop) {
  // 1000 x 10: any area >= 0.08 * 10^4 at ratio >= 3/4 needs a width >= 24 > 10, so all ten
  // tries fail; the fallback keeps the width and takes height round(10 / (3/4)) = 13, centred.
  const ResizedCropDraw t = draw_resized_crop(5, 0, 7, 1000, 10, false);
  EXPECT_EQ(t.width, 10);
  EXPECT_EQ(t.height, 13);
  EXPECT_EQ(t.top, (1000 - 13) / 2);
  EXPECT_EQ(t.left, 0);
  const ResizedCropDraw s = draw_resized_crop(5, 0, 7, 10, 1000, false);
  EXPECT_EQ(s.height, 10);
  EXPECT_EQ(s.width, 13);
  EXPECT_EQ(s.left, (1000 - 13) / 2);
  EXPECT_EQ(s.top, 0);
}

TEST(ImageTransforms, TrainTransformIsTheRegionResizedThenMirrored) {
  const Image im = make_image(60, 90, [](int y, int x, int c) { return (y * 9 + x * 5 + c * 70 + x * y / 3) % 256; });
  const int size = 32;
  int flipped = 0;
  for (int i = 0; i < 12; ++i) {
    const ResizedCropDraw d = draw_resized_crop(3, 1, i, im.height, im.width, true);
    std::vector<std::uint8_t> got(3 * size * size), want(3 * size * size);
    train_transform(im, d, size, got.data());
    resize_region(im, d.top, d.left, d.height, d.width, size, size, want.data());
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x)
          ASSERT_EQ(got[(c * size + y) * size + x], want[(c * size + y) * size + (d.flip ? size - 1 - x : x)]);
    flipped += d.flip;
  }
  EXPECT_GT(flipped, 0);
  EXPECT_LT(flipped, 12);
  ResizedCropDraw outside;
  outside.top = 50;
  outside.height = 20;
  outside.width = 5;
  std::vector<std::uint8_t> buf(3 * size * size);
  EXPECT_THROW(train_transform(im, outside, size, buf.data()), Error);
}

}  // namespace
}  // namespace safnet
