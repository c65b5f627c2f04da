// What a GPU fault campaign sends across the bus per trial, counted on the simulator
// (cuda/sim/counters.h): after setup, nothing host -> device, the metrics device -> host, one host
// synchronisation; and its records: those of the CPU, naming the device, one kind per file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "app/campaign.h"
#include "app/devices.h"
#include "cuda/sim/counters.h"
#include "host/check.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

constexpr std::int64_t kImages = 24;  // two batches of 16 and 8: both plans run every trial
constexpr int kBatch = 16;

Checkpoint small_cnn() {
  Checkpoint ck;
  ck.model.arch = "cnn";
  ck.model.in_channels = 3;
  ck.model.height = ck.model.width = 8;
  ck.model.classes = 10;
  ck.model.saf.kind = SafKind::tanh;
  ck.params = init_params(ck.model, 7);
  return ck;
}

EvalSet random_set() {
  EvalSet s;
  s.images = Tensor({kImages, 3, 8, 8});
  std::mt19937 rng(11);
  std::normal_distribution<float> pixel(0.0f, 1.0f);
  for (std::int64_t i = 0; i < s.images.numel(); ++i) s.images.data<float>()[i] = pixel(rng);
  for (std::int64_t i = 0; i < kImages; ++i) s.labels.push_back(static_cast<std::int32_t>(i % 10));
  return s;
}

CampaignConfig config(std::int64_t trials, double prefix_mib = 0, bool verify = false) {
  CampaignConfig cfg;
  cfg.dtypes = {DType::f16()};
  cfg.bers = {1e-3};  // every trial flips dozens of bits: none reuses the clean result
  cfg.trials = trials;
  cfg.seed = 3;
  cfg.batch = kBatch;
  cfg.prefix_cache_mib = prefix_mib;
  cfg.verify_sampler = verify;
  cfg.quiet = true;
  return cfg;
}

struct CampaignRun {
  sim::Counters counts;
  std::map<std::int64_t, TrialRecord> records;
};

CampaignRun run_campaign(Backend& backend, const CampaignConfig& cfg, const std::string& file) {
  Campaign campaign(small_cnn(), "ck", "random", kImages, random_set(), cfg, backend);
  ResultsWriter out(file, campaign.id());
  sim::reset_counters();
  campaign.run(out);
  CampaignRun r;
  r.counts = sim::counters();
  for (TrialRecord& t : read_results(file)) r.records[t.trial] = t;
  return r;
}

double per_trial(std::uint64_t many, std::uint64_t few, std::int64_t extra) {
  return (static_cast<double>(many) - static_cast<double>(few)) / static_cast<double>(extra);
}

TEST(CampaignTraffic, PerTrialNothingUpOneSmallReadbackOneSync) {
  Backend& device = backend_for(Device::parse("sim"));
  const auto dir = test::scratch_dir("campaign_traffic");
  // Setup (uploads, plans, graph captures, the clean trial) is the same in both runs; what the
  // four extra trials add is the per-trial cost.
  const CampaignRun few = run_campaign(device, config(2), (dir / "few.jsonl").string());
  const CampaignRun many = run_campaign(device, config(6), (dir / "many.jsonl").string());
  ASSERT_EQ(many.records.size(), 7u);
  const sim::Counters& a = few.counts;
  const sim::Counters& b = many.counts;
  const double h2d = per_trial(b.h2d_bytes, a.h2d_bytes, 4), d2h = per_trial(b.d2h_bytes, a.d2h_bytes, 4);
  const double syncs = per_trial(b.host_syncs, a.host_syncs, 4);
  const double kernels = per_trial(b.kernel_launches, a.kernel_launches, 4);
  const double graphs = per_trial(b.graph_launches, a.graph_launches, 4);
  std::printf("per trial: %.1f B host->device, %.1f B device->host, %.2f host syncs, %.2f kernel launches, "
              "%.2f graph launches (%.2f kernels in graphs)\n",
              h2d, d2h, syncs, kernels, graphs, per_trial(b.graph_kernels, a.graph_kernels, 4));
  EXPECT_EQ(h2d, 0.0) << "the test set and the faults must stay on the device";
  EXPECT_LE(d2h, 64.0) << "only the trial's metrics should come back";
  EXPECT_LE(syncs, 1.0);
  EXPECT_LE(graphs, 2.0) << "one replay per batch";
}

// The device's own sample, trusted (its sites never come back), gives the CPU's accuracies; with
// --verify-sampler it is also compared site by site.
TEST(CampaignTraffic, RecordsAreTheCpusWithAndWithoutTheGoldenPrefix) {
  const auto dir = test::scratch_dir("campaign_traffic_records");
  for (const double prefix_mib : {0.0, 64.0}) {
    const bool verify = prefix_mib > 0;
    const CampaignRun cpu =
        run_campaign(backend_for(Device::parse("cpu")), config(4, prefix_mib), (dir / "cpu.jsonl").string());
    const CampaignRun dev =
        run_campaign(backend_for(Device::parse("sim")), config(4, prefix_mib, verify), (dir / "sim.jsonl").string());
    std::filesystem::remove(dir / "cpu.jsonl");
    std::filesystem::remove(dir / "sim.jsonl");
    ASSERT_EQ(cpu.records.size(), 5u);
    ASSERT_EQ(dev.records.size(), cpu.records.size());
    for (const auto& [trial, c] : cpu.records) {
      const TrialRecord& s = dev.records.at(trial);
      EXPECT_EQ(c.device, "cpu");
      EXPECT_EQ(s.device, "sim");
      EXPECT_EQ(s.flips, c.flips) << "trial " << trial << ", prefix " << prefix_mib;
      EXPECT_EQ(s.nonfinite, c.nonfinite) << "trial " << trial;
      // The simulator runs the kernels with glibc's math: the same images are right and wrong.
      EXPECT_EQ(s.top1, c.top1) << "trial " << trial << ", prefix " << prefix_mib;
      EXPECT_EQ(s.top5, c.top5) << "trial " << trial;
      EXPECT_NEAR(s.loss, c.loss, 1e-5 * (1 + std::fabs(c.loss))) << "trial " << trial;
    }
    EXPECT_GT(cpu.records.at(0).flips, 10);
  }
}

// A results file holds the trials of one kind of device unless the run allows mixing; the refusal
// names the file and both devices.
TEST(CampaignTraffic, ResumingOnAnotherKindOfDeviceIsRefusedUnlessAllowed) {
  const std::string file = (test::scratch_dir("campaign_devices") / "r.jsonl").string();
  run_campaign(backend_for(Device::parse("cpu")), config(1), file);
  Backend& device = backend_for(Device::parse("sim"));
  try {
    run_campaign(device, config(3), file);
    ADD_FAILURE() << "resumed a cpu file on sim";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(file + ": its trials ran on cpu and this run is on sim", 0), 0u) << msg;
    EXPECT_NE(msg.find("--allow-mixed-devices"), std::string::npos) << msg;
  }
  EXPECT_EQ(read_results(file).size(), 2u) << "nothing written by the refused run";
  CampaignConfig mixed = config(3);
  mixed.allow_mixed_devices = true;
  const CampaignRun both = run_campaign(device, mixed, file);
  ASSERT_EQ(both.records.size(), 4u);
  EXPECT_EQ(both.records.at(0).device, "cpu");
  EXPECT_EQ(both.records.at(2).device, "sim");
}

}  // namespace
}  // namespace safnet
