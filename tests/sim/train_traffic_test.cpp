// What a training step on a GPU sends across the bus, counted on the simulator: with the training
// set resident on the device, nothing up, the loss and the progress line's sums back, one wait.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "app/devices.h"
#include "app/trainer.h"
#include "cuda/sim/counters.h"
#include "tests/sim/small_cnn.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

constexpr int kImages = 64, kBatch = 16;  // four steps an epoch

Dataset random_set(int n, std::uint32_t seed) {
  Dataset d;
  d.name = "cifar10";
  d.channels = 3;
  d.height = d.width = 8;
  d.classes = 10;
  std::mt19937 rng(seed);
  for (std::int64_t i = 0; i < n * d.image_bytes(); ++i) d.images.push_back(static_cast<std::uint8_t>(rng()));
  for (int i = 0; i < n; ++i) d.labels.push_back(static_cast<std::int32_t>(rng() % 10));
  return d;
}

// One epoch on the simulator from fresh weights, skipping its first `skip` steps as a resumed run does.
sim::Counters train_epoch(const Dataset& train_set, const Dataset& test_set, std::int64_t skip, const std::string& out) {
  TrainConfig cfg;
  cfg.model = test::small_cnn_config();
  cfg.dataset = "cifar10";
  cfg.epochs = 1;
  cfg.batch = kBatch;
  cfg.out_dir = out;
  cfg.augment = AugmentConfig{2, true};
  Checkpoint start;
  start.model = cfg.model;
  start.params = init_params(cfg.model, 5);
  start.meta["epoch"] = "0";
  start.meta["step_in_epoch"] = std::to_string(skip);
  sim::reset_counters();
  const TrainResult r = train(cfg, backend_for(Device::parse("sim")), train_set, test_set, start);
  EXPECT_EQ(r.step_losses.size(), static_cast<std::size_t>(kImages / kBatch - skip));
  return sim::counters();
}

TEST(TrainTraffic, PerStepNothingUpTheLossBackOneSync) {
  const Dataset train_set = random_set(kImages, 1), test_set = random_set(16, 2);
  const auto dir = test::scratch_dir("train_traffic");
  // Both runs upload the set and the epoch's order, run a step eagerly and one recorded as a CUDA
  // graph, evaluate and save alike; they differ by two replayed steps.
  // The backend outlives a run and keeps what it uploaded (the normalisation table): a first run
  // leaves both measured ones the same state.
  train_epoch(train_set, test_set, kImages / kBatch - 1, (dir / "warm").string());
  const sim::Counters all = train_epoch(train_set, test_set, 0, (dir / "all").string());
  const sim::Counters half = train_epoch(train_set, test_set, 2, (dir / "half").string());
  auto per_step = [](std::uint64_t a, std::uint64_t b) { return (static_cast<double>(a) - static_cast<double>(b)) / 2; };
  const double h2d = per_step(all.h2d_bytes, half.h2d_bytes), d2h = per_step(all.d2h_bytes, half.d2h_bytes);
  const double syncs = per_step(all.host_syncs, half.host_syncs);
  std::printf("per step: %.1f B host->device, %.1f B device->host, %.2f host syncs, %.2f kernel launches, %.2f graph "
              "launches (%.2f kernels in graphs)\n",
              h2d, d2h, syncs, per_step(all.kernel_launches, half.kernel_launches),
              per_step(all.graph_launches, half.graph_launches), per_step(all.graph_kernels, half.graph_kernels));
  EXPECT_EQ(h2d, 0.0) << "the training set, its order and its draws must stay on the device";
  EXPECT_LE(d2h, 4.0 + 32.0) << "only the loss and the progress line's sums should come back";
  EXPECT_LE(syncs, 1.0) << "one wait, for the loss";
}

}  // namespace
}  // namespace safnet
