// What a GPU fault campaign sends across the bus per trial, counted on the simulator
// (cuda/sim/counters.h): after setup, nothing host -> device, the metrics device -> host, one host
// synchronisation per group of trials in flight, one graph launch per trial; and its records: those
// of the CPU whatever order the streams run in, naming the device, one kind per file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>
#include <cstdio>
#include <map>
#include <random>

#include "app/campaign.h"
#include "app/devices.h"
#include "app/trials_in_flight.h"
#include "cuda/sim/counters.h"
#include "host/check.h"
#include "tests/sim/small_cnn.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

constexpr std::int64_t kImages = 24;  // two batches of 16 and 8: both plans run every trial
constexpr int kBatch = 16;

Checkpoint small_cnn() {
  Checkpoint ck;
  ck.model = test::small_cnn_config();
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

CampaignConfig config(std::int64_t trials, double prefix_mib = 0, bool verify = false, int in_flight = 0) {
  CampaignConfig cfg;
  cfg.dtypes = {DType::f16()};
  cfg.bers = {1e-3};  // every trial flips dozens of bits: none reuses the clean result
  cfg.trials = trials;
  cfg.seed = 3;
  cfg.batch = kBatch;
  cfg.prefix_cache_mib = prefix_mib;
  cfg.verify_sampler = verify;
  cfg.trials_in_flight = in_flight;
  cfg.quiet = true;
  return cfg;
}

struct CampaignRun {
  sim::Counters counts;
  std::map<std::int64_t, TrialRecord> records;  // by trial (one dtype and BER)
  std::vector<TrialRecord> all;
};

CampaignRun run_campaign(Backend& backend, const CampaignConfig& cfg, const std::string& file) {
  Campaign campaign(small_cnn(), "ck", "random", kImages, random_set(), cfg, backend);
  ResultsWriter out(file, campaign.id());
  sim::reset_counters();
  campaign.run(out);
  CampaignRun r;
  r.counts = sim::counters();
  r.all = read_results(file);
  for (const TrialRecord& t : r.all) r.records[t.trial] = t;
  return r;
}

// Every record of a run, in (dtype, BER, trial) order.
std::vector<TrialRecord> read_all(const CampaignRun& run) {
  std::vector<TrialRecord> all = run.all;
  std::sort(all.begin(), all.end(), [](const TrialRecord& a, const TrialRecord& b) {
    return std::tie(a.dtype, a.ber, a.trial) < std::tie(b.dtype, b.ber, b.trial);
  });
  return all;
}

double per_trial(std::uint64_t many, std::uint64_t few, std::int64_t extra) {
  return (static_cast<double>(many) - static_cast<double>(few)) / static_cast<double>(extra);
}

TEST(CampaignTraffic, PerTrialNothingUpOneSmallReadbackOneSyncPerGroup) {
  Backend& device = backend_for(Device::parse("sim"));
  const auto dir = test::scratch_dir("campaign_traffic");
  for (const int in_flight : {1, 2}) {
    // Setup (uploads, plans, graph captures, the clean trial) is the same in both runs, which use
    // every slot; what the four extra trials add is the per-trial cost.
    const std::int64_t few_trials = 2 * in_flight, extra = 4, groups = extra / in_flight;
    const CampaignRun few =
        run_campaign(device, config(few_trials, 0, false, in_flight), (dir / "few.jsonl").string());
    const CampaignRun many =
        run_campaign(device, config(few_trials + extra, 0, false, in_flight), (dir / "many.jsonl").string());
    std::filesystem::remove(dir / "few.jsonl");
    std::filesystem::remove(dir / "many.jsonl");
    ASSERT_EQ(many.records.size(), static_cast<std::size_t>(few_trials + extra + 1));
    const sim::Counters& a = few.counts;
    const sim::Counters& b = many.counts;
    const double h2d = per_trial(b.h2d_bytes, a.h2d_bytes, extra), d2h = per_trial(b.d2h_bytes, a.d2h_bytes, extra);
    const double syncs = per_trial(b.host_syncs, a.host_syncs, extra);
    const double kernels = per_trial(b.kernel_launches, a.kernel_launches, extra);
    const double graphs = per_trial(b.graph_launches, a.graph_launches, extra);
    std::printf("%d in flight, per trial: %.1f B host->device, %.1f B device->host, %.2f host syncs, %.2f kernel "
                "launches, %.2f graph launches (%.2f kernels in graphs)\n",
                in_flight, h2d, d2h, syncs, kernels, graphs, per_trial(b.graph_kernels, a.graph_kernels, extra));
    EXPECT_EQ(h2d, 0.0) << "the test set, the faults and the trial index must stay on the device";
    EXPECT_LE(d2h, 64.0) << "only the trial's metrics should come back";
    EXPECT_LE(syncs * static_cast<double>(extra), static_cast<double>(groups)) << "one wait per group of trials";
    EXPECT_LE(graphs, 1.0) << "one replay per trial";
  }
}

// K trials in flight, the streams run in an order drawn from a seed: every trial's flips and
// accuracies are the CPU's, with the golden prefix and without, over two dtypes (the second one
// drops the first one's prefix cache) and a BER at which most trials flip nothing.
TEST(CampaignTraffic, TrialsInFlightUnderShuffledStreamsAreTheCpus) {
  const auto dir = test::scratch_dir("campaign_in_flight");
  auto cfg = [](double prefix_mib, int in_flight) {
    CampaignConfig c = config(5, prefix_mib, false, in_flight);
    c.dtypes = {DType::f16(), DType::parse("fixed2.5")};
    c.bers = {1e-6, 1e-3};
    return c;
  };
  for (const auto& [prefix_mib, seed] : std::vector<std::pair<double, std::uint64_t>>{{0.0, 5}, {64.0, 6}}) {
    const CampaignRun cpu = run_campaign(backend_for(Device::parse("cpu")), cfg(prefix_mib, 0), (dir / "cpu.jsonl").string());
    std::filesystem::remove(dir / "cpu.jsonl");
    const CampaignRun dev = [&] {
      sim::ScopedStreamInterleaving on(seed);
      return run_campaign(backend_for(Device::parse("sim")), cfg(prefix_mib, 3), (dir / "sim.jsonl").string());
    }();
    std::filesystem::remove(dir / "sim.jsonl");
    ASSERT_EQ(read_all(cpu).size(), 24u);
    EXPECT_GE(dev.counts.graph_launches, 8u) << "the trials with flips ran as graph replays";
    const std::vector<TrialRecord> cpu_all = read_all(cpu), dev_all = read_all(dev);
    ASSERT_EQ(dev_all.size(), 24u);
    for (std::size_t i = 0; i < cpu_all.size(); ++i) {
      const TrialRecord& c = cpu_all[i];
      const TrialRecord& s = dev_all[i];
      const std::string where = c.dtype + " ber " + std::to_string(c.ber) + " trial " + std::to_string(c.trial) +
                                ", prefix " + std::to_string(prefix_mib) + ", seed " + std::to_string(seed);
      ASSERT_EQ(std::tie(s.dtype, s.ber, s.trial), std::tie(c.dtype, c.ber, c.trial)) << where;
      EXPECT_EQ(s.flips, c.flips) << where;
      EXPECT_EQ(s.nonfinite, c.nonfinite) << where;
      EXPECT_EQ(s.top1, c.top1) << where;
      EXPECT_EQ(s.top5, c.top5) << where;
      EXPECT_NEAR(s.loss, c.loss, 1e-5 * (1 + std::fabs(c.loss))) << where;
    }
  }
}

// Shards and a resumed run in flight write the records the CPU writes in one run.
TEST(CampaignTraffic, TrialsInFlightShardAndResumeAsBefore) {
  const auto dir = test::scratch_dir("campaign_in_flight_shards");
  const CampaignRun cpu = run_campaign(backend_for(Device::parse("cpu")), config(6), (dir / "cpu.jsonl").string());
  Backend& device = backend_for(Device::parse("sim"));
  std::map<std::int64_t, TrialRecord> got;
  for (int k = 0; k < 2; ++k) {
    CampaignConfig c = config(6, 0, false, 2);
    c.shard = Shard{k, 2};
    for (auto& [t, r] : run_campaign(device, c, (dir / ("shard" + std::to_string(k) + ".jsonl")).string()).records)
      EXPECT_TRUE(got.emplace(t, r).second || t < 0) << "trial " << t << " in both shards";  // the clean one is in each
  }
  const std::string resumed = (dir / "resumed.jsonl").string();
  run_campaign(device, config(3, 0, false, 2), resumed);
  const CampaignRun rest = run_campaign(device, config(6, 0, false, 2), resumed);
  ASSERT_EQ(got.size(), cpu.records.size());
  ASSERT_EQ(rest.records.size(), cpu.records.size());
  EXPECT_EQ(read_results(resumed).size(), cpu.records.size()) << "no trial run twice";
  for (const auto& [trial, c] : cpu.records)
    for (const TrialRecord* s : {&std::as_const(got).at(trial), &rest.records.at(trial)}) {
      EXPECT_EQ(s->flips, c.flips) << "trial " << trial;
      EXPECT_EQ(s->top1, c.top1) << "trial " << trial;
      EXPECT_EQ(s->top5, c.top5) << "trial " << trial;
    }
}

// The number in flight: the one asked for, else what half of the free memory holds (1 to 8), never
// more than the trials left.
TEST(CampaignTraffic, TrialsInFlightFromFreeMemory) {
  EXPECT_EQ(trials_in_flight(3, 100, 0, 50), 3);
  EXPECT_EQ(trials_in_flight(3, 100, 0, 2), 2);
  EXPECT_EQ(trials_in_flight(0, 100, 1000, 50), 5);
  EXPECT_EQ(trials_in_flight(0, 100, 150, 50), 1);
  EXPECT_EQ(trials_in_flight(0, 100, 100000, 50), 8);
  EXPECT_EQ(trials_in_flight(0, 100, 100000, 0), 1);
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
    EXPECT_EQ(msg.rfind(file + ": its trials ran on cpu and this run on sim", 0), 0u) << msg;
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
