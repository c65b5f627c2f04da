// Data set names and the default normalisation constants, checked against the real data.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/dataset.h"
#include "host/check.h"
#include "tests/skip.h"

namespace safnet {
namespace {

namespace fs = std::filesystem;

TEST(Dataset, UnknownNameListsValidNames) {
  for (const auto& call : {+[] { load_dataset("imagenet", "/nonexistent", Split::train); },
                           +[] { default_normalization("imagenet"); }}) {
    try {
      call();
      ADD_FAILURE() << "expected safnet::Error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("'imagenet'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("cifar10 cifar100 mnist fashion-mnist"), std::string::npos) << msg;
    }
  }
}

TEST(Dataset, DefaultNormalizationShapes) {
  for (const char* n : {"cifar10", "cifar100"}) {
    const Normalization z = default_normalization(n);
    EXPECT_EQ(z.mean.size(), 3u) << n;
    EXPECT_EQ(z.std.size(), 3u) << n;
  }
  for (const char* n : {"mnist", "fashion-mnist"}) {
    const Normalization z = default_normalization(n);
    EXPECT_EQ(z.mean.size(), 1u) << n;
    EXPECT_EQ(z.std.size(), 1u) << n;
  }
  EXPECT_FLOAT_EQ(default_normalization("mnist").mean[0], 0.1307f);
}

TEST(Dataset, FashionMnistConstantsMatchTheTrainingSet) {
  const char* dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(std::string(dir) + "/train-images-idx3-ubyte.gz")) SAFNET_SKIP_OR_FAIL("no Fashion-MNIST at " << dir);
  const Dataset d = load_dataset("fashion-mnist", dir, Split::train);
  double sum = 0, sq = 0;  // exact: integer sums below 2^53
  for (auto v : d.images) {
    sum += v;
    sq += double(v) * v;
  }
  const double n = static_cast<double>(d.images.size());
  const double mean = sum / n / 255.0, sd = std::sqrt(sq / n / (255.0 * 255.0) - mean * mean);
  const Normalization z = default_normalization("fashion-mnist");
  // The constants are the statistics rounded to 4 decimals.
  EXPECT_NEAR(z.mean[0], mean, 0.5e-4);
  EXPECT_NEAR(z.std[0], sd, 0.5e-4);
}

TEST(Dataset, Cifar10MeansAgreeWithTheSubset) {
  const std::string dir = std::string(SAFNET_SOURCE_DIR) + "/../shared/data/cifar10-subset";
  if (!fs::exists(std::string(dir) + "/data_batch_1.bin")) SAFNET_SKIP_OR_FAIL("no CIFAR-10 subset at " << dir);
  const Dataset d = load_dataset("cifar10", dir, Split::train);
  const Normalization z = default_normalization("cifar10");
  const std::int64_t plane = 32 * 32;
  for (int c = 0; c < 3; ++c) {
    // The subset's images are a sample of the training set: compare the per-image channel
    // means' average with the constant, within 5 standard errors of that average.
    double s = 0, s2 = 0;
    for (std::int64_t i = 0; i < d.size(); ++i) {
      double m = 0;
      for (std::int64_t k = 0; k < plane; ++k) m += d.images[(i * 3 + c) * plane + k];
      m /= plane * 255.0;
      s += m;
      s2 += m * m;
    }
    const double n = static_cast<double>(d.size()), mean = s / n;
    const double se = std::sqrt((s2 / n - mean * mean) / (n - 1));
    EXPECT_NEAR(z.mean[c], mean, 5 * se + 0.5e-4) << "channel " << c;
  }
}

}  // namespace
}  // namespace safnet
