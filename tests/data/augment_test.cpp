// Crop and flip on tiny images against hand-written expectations, and the statistics of the draws.
#include <gtest/gtest.h>

#include <map>

#include "data/augment.h"

namespace safnet {
namespace {

// A 2-channel 3x4 image: channel c, row y, column x holds 100c + 10y + x + 1 (never 0).
std::vector<std::uint8_t> tiny() {
  std::vector<std::uint8_t> v;
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) v.push_back(static_cast<std::uint8_t>(100 * c + 10 * y + x + 1));
  return v;
}

std::vector<std::uint8_t> run(const AugmentDraw& d) {
  const std::vector<std::uint8_t> src = tiny();
  std::vector<std::uint8_t> dst(src.size(), 0xee);
  apply_augment(src.data(), dst.data(), 2, 3, 4, d);
  return dst;
}

TEST(Augment, IdentityDraw) { EXPECT_EQ(run({}), tiny()); }

TEST(Augment, FlipMirrorsEachRow) {
  const std::vector<std::uint8_t> want{4,   3,   2,   1,   14,  13,  12,  11,  24,  23,  22,  21,
                                       104, 103, 102, 101, 114, 113, 112, 111, 124, 123, 122, 121};
  EXPECT_EQ(run({0, 0, true}), want);
}

TEST(Augment, CropShiftsAndZeroFills) {
  // dy = 1, dx = -1: output (y, x) reads input (y + 1, x - 1); row 2 and column 0 fall outside.
  const std::vector<std::uint8_t> want{0, 11, 12, 13, 0, 21, 22, 23, 0, 0, 0, 0,
                                       0, 111, 112, 113, 0, 121, 122, 123, 0, 0, 0, 0};
  EXPECT_EQ(run({1, -1, false}), want);
}

TEST(Augment, CropThenFlipMatchesTorchvisionOrder) {
  // Crop first (output reads input (y - 1, x + 2)), then mirror the cropped image.
  const std::vector<std::uint8_t> cropped{0, 0, 0, 0, 3, 4, 0, 0, 13, 14, 0, 0,
                                          0, 0, 0, 0, 103, 104, 0, 0, 113, 114, 0, 0};
  std::vector<std::uint8_t> want(cropped.size());
  for (int r = 0; r < 6; ++r)
    for (int x = 0; x < 4; ++x) want[r * 4 + x] = cropped[r * 4 + 3 - x];
  EXPECT_EQ(run({-1, 2, true}), want);
  EXPECT_EQ(run({-1, 2, false}), cropped);
}

TEST(Augment, ShiftBeyondImageIsAllZero) {
  EXPECT_EQ(run({3, 0, false}), std::vector<std::uint8_t>(24, 0));
  EXPECT_EQ(run({0, -4, true}), std::vector<std::uint8_t>(24, 0));
}

TEST(Augment, DrawsDependOnlyOnSeedEpochIndex) {
  const AugmentConfig cfg{4, true};
  int differ_epoch = 0, differ_seed = 0;
  for (int i = 0; i < 200; ++i) {
    const AugmentDraw a = draw_augment(cfg, 7, 3, i), b = draw_augment(cfg, 7, 3, i);
    EXPECT_EQ(a.dy, b.dy);
    EXPECT_EQ(a.dx, b.dx);
    EXPECT_EQ(a.flip, b.flip);
    const AugmentDraw e = draw_augment(cfg, 7, 4, i), s = draw_augment(cfg, 8, 3, i);
    differ_epoch += (a.dy != e.dy || a.dx != e.dx || a.flip != e.flip);
    differ_seed += (a.dy != s.dy || a.dx != s.dx || a.flip != s.flip);
  }
  // Independent draws coincide with probability 1/162; 200 pairs agreeing in more than 20 cases
  // would be a > 10-sigma event.
  EXPECT_GT(differ_epoch, 180);
  EXPECT_GT(differ_seed, 180);
  const AugmentDraw none = draw_augment({}, 7, 3, 5);
  EXPECT_EQ(none.dy, 0);
  EXPECT_EQ(none.dx, 0);
  EXPECT_FALSE(none.flip);
}

TEST(Augment, DrawsAreUniform) {
  // pad 1: 9 offsets x 2 flips = 18 equally likely cells.
  const AugmentConfig cfg{1, true};
  const int n = 36000;
  std::map<int, int> cells;
  for (int i = 0; i < n; ++i) {
    const AugmentDraw d = draw_augment(cfg, 1234, 0, i);
    ASSERT_GE(d.dy, -1);
    ASSERT_LE(d.dy, 1);
    ASSERT_GE(d.dx, -1);
    ASSERT_LE(d.dx, 1);
    ++cells[(d.dy + 1) * 6 + (d.dx + 1) * 2 + d.flip];
  }
  ASSERT_EQ(cells.size(), 18u);
  const double expect = n / 18.0;
  double chi2 = 0;
  for (auto& [cell, count] : cells) chi2 += (count - expect) * (count - expect) / expect;
  // Chi-square with 17 degrees of freedom: P(chi2 > 60) is about 1e-6.
  EXPECT_LT(chi2, 60.0);
}

}  // namespace
}  // namespace safnet
