// Training end to end on real data: a short run learns, checkpoints round-trip, resume is exact.
#include <gtest/gtest.h>

#include <cstring>

#include "models/checkpoint.h"
#include "tests/tools/tool_test_util.h"
#include "tools/trainer.h"

namespace safnet {
namespace {

TrainConfig small_config(const Dataset& d, const std::string& out, SafKind saf) {
  TrainConfig cfg;
  cfg.model.arch = "cnn";
  cfg.model.in_channels = d.channels;
  cfg.model.height = d.height;
  cfg.model.width = d.width;
  cfg.model.classes = d.classes;
  cfg.model.saf.kind = saf;
  cfg.dataset = "fashion-mnist";
  cfg.epochs = 2;
  cfg.batch = 64;
  cfg.schedule.base_lr = 0.05f;
  cfg.optim.weight_decay = 5e-4f;
  cfg.out_dir = out;
  cfg.quiet = true;
  return cfg;
}

TEST(Train, LearnsFashionMnistSubsetWithTanhWeights) {
  if (!test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const Dataset train_set = load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist", Split::train, 2000);
  const Dataset test_set = load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist", Split::test, 500);
  const std::string out = test::temp_dir("train_learns");
  TrainConfig cfg = small_config(train_set, out, SafKind::tanh);
  Checkpoint start;
  start.model = cfg.model;
  start.params = init_params(cfg.model, 1);
  const TrainResult r = train(cfg, train_set, test_set, std::move(start));
  EXPECT_EQ(r.epochs_done, 2);
  EXPECT_LT(r.last_epoch_loss, r.first_epoch_loss);
  EXPECT_GT(r.final_top1, 60.0);  // chance is 10 %
  // The checkpoint reloads to the same model.
  const Checkpoint ck = load_checkpoint(checkpoint_path(out));
  EXPECT_EQ(ck.model.saf.kind, SafKind::tanh);
  EXPECT_EQ(ck.meta.at("epoch"), "2");
  EXPECT_EQ(ck.optim_steps, 2 * ((2000 + 63) / 64));
}

TEST(Train, ResumeFromACheckpointIsBitExact) {
  if (!test::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const Dataset train_set = load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist", Split::train, 512);
  const Dataset test_set = load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist", Split::test, 128);
  // Straight through: two epochs.
  const std::string a = test::temp_dir("resume_a");
  TrainConfig cfg = small_config(train_set, a, SafKind::softsign);
  Checkpoint s1;
  s1.model = cfg.model;
  s1.params = init_params(cfg.model, 3);
  train(cfg, train_set, test_set, s1);
  // One epoch, then resume for the second from the checkpoint file.
  const std::string b = test::temp_dir("resume_b");
  TrainConfig cfg1 = small_config(train_set, b, SafKind::softsign);
  Checkpoint s2;
  s2.model = cfg.model;
  s2.params = init_params(cfg.model, 3);
  cfg1.epochs = 1;
  train(cfg1, train_set, test_set, s2);
  TrainConfig cfg2 = small_config(train_set, b, SafKind::softsign);
  train(cfg2, train_set, test_set, load_checkpoint(checkpoint_path(b)));

  const Checkpoint ca = load_checkpoint(checkpoint_path(a));
  const Checkpoint cb = load_checkpoint(checkpoint_path(b));
  for (const ParamInfo& p : ca.params.all()) {
    const Tensor& q = cb.params.at(p.name).value;
    EXPECT_EQ(0, std::memcmp(p.value.raw(), q.raw(), p.value.nbytes())) << p.name;
  }
}

}  // namespace
}  // namespace safnet
