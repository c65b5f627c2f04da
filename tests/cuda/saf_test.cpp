// SAF math: derivative against central differences, inverse round trips, NaN handling.
#include <gtest/gtest.h>

#include <cmath>

#include "cuda/saf.h"

namespace safnet {
namespace {

const SafKind kAll[] = {SafKind::none, SafKind::tanh, SafKind::tanh_c, SafKind::softsign, SafKind::arctan, SafKind::arctan2pi};

TEST(Saf, DerivativeMatchesCentralDifferences) {
  for (SafKind k : kAll) {
    const Saf s{k, 0.5f};
    for (double x = -4.0; x <= 4.0; x += 0.37) {
      const double h = 1e-3;
      const double fd = (double(saf_value(s, float(x + h))) - double(saf_value(s, float(x - h)))) / (2 * h);
      // f32 rounding of the two values (<= 1.2e-7 each) over 2h, plus the h^2 truncation term.
      EXPECT_NEAR(saf_grad(s, float(x)), fd, 2.4e-7 / (2 * h) + 1e-5) << static_cast<int>(k) << " at " << x;
    }
  }
}

TEST(Saf, InverseRoundTripsInsideTheClamp) {
  for (SafKind k : kAll) {
    const Saf s{k, 0.5f};
    for (double x = -3.0; x <= 3.0; x += 0.25) {
      const float y = saf_value(s, float(x));
      // Near saturation tau' is small and one ulp of y moves x by ulp / tau'(x).
      const double tol = 4e-7 / std::max(1e-3, double(saf_grad(s, float(x)))) + 1e-6;
      EXPECT_NEAR(saf_inverse(s, y), x, tol) << static_cast<int>(k) << " at " << x;
    }
  }
}

TEST(Saf, InverseIsClampedAtTheEndsOfTheRange) {
  for (SafKind k : {SafKind::tanh, SafKind::softsign, SafKind::arctan2pi}) {
    const Saf s{k, 1.0f};
    EXPECT_EQ(saf_inverse(s, 1.0f), kSafInverseClamp);
    EXPECT_EQ(saf_inverse(s, -5.0f), -kSafInverseClamp);
  }
}

TEST(Saf, SaturatesHugeWeights) {
  const Saf s{SafKind::tanh};
  EXPECT_EQ(saf_value(s, 3e38f), 1.0f);
  EXPECT_EQ(saf_value(s, -INFINITY), -1.0f);
  EXPECT_NEAR(saf_value(Saf{SafKind::arctan}, INFINITY), 1.5707963f, 1e-6);
  EXPECT_EQ(saf_value(Saf{SafKind::softsign}, INFINITY), 1.0f);
  EXPECT_EQ(saf_value(Saf{SafKind::softsign}, -INFINITY), -1.0f);
  EXPECT_EQ(saf_value(Saf{SafKind::softsign}, 3e38f), 1.0f);
}

TEST(Saf, NanPropagatesOrReadsAsZero) {
  const float nan = std::nanf("");
  EXPECT_TRUE(std::isnan(saf_value(Saf{SafKind::tanh, 1.0f, NanMode::propagate}, nan)));
  EXPECT_EQ(saf_value(Saf{SafKind::tanh, 1.0f, NanMode::zero}, nan), 0.0f);
  EXPECT_EQ(saf_grad(Saf{SafKind::softsign, 1.0f, NanMode::zero}, nan), 0.0f);
}

}  // namespace
}  // namespace safnet
