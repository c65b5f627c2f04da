// The golden prefix: a campaign whose trials restart from cached clean activations writes the same
// records, bit for bit, as one that evaluates the whole network for every trial, whatever the
// cache's budget, dtype, targets and thread count.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "app/campaign.h"
#include "models/model.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

Checkpoint checkpoint(const std::string& arch, int hw) {
  Checkpoint ck;
  ck.model.arch = arch;
  ck.model.height = ck.model.width = hw;
  ck.model.saf = parse_saf("tanh");
  ck.params = init_params(ck.model, 3);
  return ck;
}

EvalSet images(int n, int hw) {
  EvalSet set;
  set.images = Tensor({n, 3, hw, hw});
  for (std::int64_t i = 0; i < set.images.numel(); ++i) set.images.data<float>()[i] = static_cast<float>(std::sin(0.37 * i));
  for (int i = 0; i < n; ++i) set.labels.push_back(i % 10);
  return set;
}

// The campaign's records as their JSON lines, sorted, without the time each took (NaN losses
// compare by their text).
std::vector<std::string> run(const Checkpoint& ck, const EvalSet& set, CampaignConfig cfg, double mib,
                             PrefixStats* stats = nullptr) {
  cfg.prefix_cache_mib = mib;
  cfg.quiet = true;
  const std::string path = (test::scratch_dir("prefix") / "results.jsonl").string();
  Campaign campaign(ck, "prefix", "cifar10", 0, set, cfg, cpu_backend());
  {
    ResultsWriter out(path, campaign.id());
    campaign.run(out);
  }
  if (stats) *stats = campaign.prefix_stats();
  std::vector<std::string> lines;
  for (TrialRecord r : read_results(path)) {
    r.seconds = 0;
    lines.push_back(to_json_line(r));
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

// Every target (weights, biases, batch norm) of the small CNN, in f32 (exponent flips: NaN and
// huge logits) and Q2.5, with budgets that hold every candidate position, some, or none.
TEST(GoldenPrefix, SameRecordsAsFullRunsOnEveryTargetAndBudget) {
  omp_set_num_threads(1);
  const Checkpoint ck = checkpoint("cnn", 16);
  const EvalSet set = images(10, 16);
  CampaignConfig cfg;
  cfg.dtypes = {DType::f32(), DType::parse("fixed2.5")};
  cfg.bers = {3e-6, 3e-5};
  cfg.trials = 8;
  cfg.seed = 5;
  cfg.batch = 4;  // two full batches and a partial one
  cfg.threads = 2;
  cfg.targets.biases = cfg.targets.batchnorm = true;
  cfg.targets.layers.push_back("batchnorm");
  const std::vector<std::string> full = run(ck, set, cfg, 0);
  ASSERT_EQ(full.size(), 2u * 2u * 9u);
  PrefixStats all, none;
  EXPECT_EQ(run(ck, set, cfg, 1024, &all), full);
  EXPECT_GT(all.trials, 0);
  EXPECT_GT(all.started_late, 0);
  EXPECT_GT(all.positions, 0u);
  EXPECT_LE(all.positions, all.candidates);
  // conv2 (bn2 runs fused into it) and fc; bn1 runs fused into conv1, at position 0.
  EXPECT_GE(all.candidates, 2u);
  EXPECT_EQ(run(ck, set, cfg, 1e-6, &none), full);  // no position fits
  EXPECT_EQ(none.positions, 0u);
  EXPECT_EQ(none.started_late, 0);
}

// A targeted campaign on layer3 of a (small-input) ResNet-20, f32 and f16, with a budget that holds
// only some of the six candidate positions, and with every one.
TEST(GoldenPrefix, SameRecordsForATargetedResNetCampaign) {
  omp_set_num_threads(1);
  const Checkpoint ck = checkpoint("resnet20", 8);
  const EvalSet set = images(6, 8);
  CampaignConfig cfg;
  cfg.dtypes = {DType::f32(), DType::f16()};
  cfg.bers = {3e-7, 3e-6};
  cfg.trials = 5;
  cfg.seed = 11;
  cfg.batch = 4;
  cfg.threads = 2;
  cfg.targets.pattern = "layer3.*";
  const std::vector<std::string> full = run(ck, set, cfg, 0);
  PrefixStats all, some;
  CampaignConfig one = cfg;
  one.threads = 1;  // with two, a trial may run whole while the other thread builds the cache
  EXPECT_EQ(run(ck, set, one, 1024, &all), full);
  EXPECT_EQ(all.candidates, 6u);  // the six convolutions of layer3
  // Only positions that repay their clean pass within the campaign's 10 trials; the shallowest
  // (layer3.0.conv1) always is, so every trial starts late: every flip lies past layer2.
  EXPECT_GT(all.positions, 0u);
  EXPECT_LE(all.positions, 6u);
  EXPECT_EQ(all.started_late, all.trials);
  // The six positions hold 12, 18, 6, 12, 6 and 12 KiB (the block's input, and the first conv's output).
  EXPECT_EQ(run(ck, set, cfg, 30.0 / 1024, &some), full);
  EXPECT_GT(some.positions, 0u);
  EXPECT_LT(some.positions, 6u);
  EXPECT_GT(some.started_late, 0);
}

// The cache is worth its clean pass only over enough trials: two readers, 10 nodes of work 1 each.
TEST(GoldenPrefix, PositionsAreKeptOnlyWhereTheTrialsRepayTheirCleanPass) {
  const std::vector<std::size_t> reader{2, 6};
  const std::vector<double> bits{1000, 1000}, bers{1e-3};
  std::vector<double> before;
  for (int p = 0; p <= 10; ++p) before.push_back(p);
  auto bytes = [](std::size_t) { return 1.0; };
  // P(first faulty reader) = 0.632 at 2 and 0.233 at 6: caching position 2 saves 1.73 work per
  // trial for a pass of 2, both save 2.66 for a pass of 6.
  EXPECT_TRUE(choose_prefix_positions(reader, bits, bers, before, bytes, 1e9, 1).empty());
  EXPECT_EQ(choose_prefix_positions(reader, bits, bers, before, bytes, 1e9, 3), (std::vector<std::size_t>{2}));
  EXPECT_EQ(choose_prefix_positions(reader, bits, bers, before, bytes, 1e9, 100), (std::vector<std::size_t>{2, 6}));
  // Under a budget of one position, the one saving the most per byte: 2 (1.73, against 0.233 x 6 = 1.40).
  EXPECT_EQ(choose_prefix_positions(reader, bits, bers, before, bytes, 1, 100), (std::vector<std::size_t>{2}));
  EXPECT_TRUE(choose_prefix_positions(reader, bits, bers, before, bytes, 0.5, 100).empty());
}

}  // namespace
}  // namespace safnet
