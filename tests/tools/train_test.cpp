// Training end to end on real data: a short run learns, checkpoints round-trip, resume is exact.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "host/file_io.h"
#include "models/checkpoint.h"
#include "tests/tools/tool_test_util.h"
#include "app/trainer.h"
#include "tests/skip.h"

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
  if (!test::have_fashion_mnist()) SAFNET_SKIP_OR_FAIL("dataset-fashion-mnist is not installed");
  const Dataset train_set = load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist", Split::train, 2000);
  const Dataset test_set = load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist", Split::test, 500);
  const std::string out = test::temp_dir("train_learns");
  TrainConfig cfg = small_config(train_set, out, SafKind::tanh);
  Checkpoint start;
  start.model = cfg.model;
  start.params = init_params(cfg.model, 1);
  const TrainResult r = train(cfg, cpu_backend(), train_set, test_set, std::move(start));
  EXPECT_EQ(r.epochs_done, 2);
  EXPECT_LT(r.last_epoch_loss, r.first_epoch_loss);
  EXPECT_GT(r.final_top1, 60.0);  // chance is 10 %
  // The checkpoint reloads to the same model.
  const Checkpoint ck = load_checkpoint(checkpoint_path(out));
  EXPECT_EQ(ck.model.saf.kind, SafKind::tanh);
  EXPECT_EQ(ck.meta.at("epoch"), "2");
  EXPECT_EQ(ck.optim_steps, 2 * ((2000 + 63) / 64));
}

// Ctrl-C mid-epoch writes a checkpoint at the current step; --resume then continues so exactly
// that the final weights equal those of an uninterrupted run, bit for bit.
TEST(Train, InterruptThenResumeIsBitExact) {
  if (!test::have_fashion_mnist()) SAFNET_SKIP_OR_FAIL("dataset-fashion-mnist is not installed");
  const std::string a = test::temp_dir("straight"), b = test::temp_dir("interrupted");
  const std::string args = "train --model cnn --saf softsign --dataset fashion-mnist --limit 3000 --epochs 3 --batch 50 --quiet --out ";
  ASSERT_EQ(test::run(args + a).code, 0);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + test::safnet_bin() + " " + args + b + " >/dev/null 2>&1").c_str(), nullptr);
    _exit(127);
  }
  // Interrupt during the second epoch: after the first epoch's log line exists.
  for (int i = 0; i < 6000 && !file_exists(train_log_path(b)); ++i) usleep(10000);
  usleep(50000);
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 130) << "the run ended before the interrupt arrived";
  const Checkpoint mid = load_checkpoint(checkpoint_path(b));
  EXPECT_EQ(mid.meta.at("epoch"), "1");
  EXPECT_NE(mid.meta.at("step_in_epoch"), "0");

  const auto r = test::run(args + b + " --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  const Checkpoint ca = load_checkpoint(checkpoint_path(a));
  const Checkpoint cb = load_checkpoint(checkpoint_path(b));
  for (const ParamInfo& p : ca.params.all()) {
    const Tensor& q = cb.params.at(p.name).value;
    EXPECT_EQ(0, std::memcmp(p.value.raw(), q.raw(), p.value.nbytes())) << p.name;
  }
  ASSERT_EQ(ca.optim_slots.size(), cb.optim_slots.size());
  for (const auto& [name, t] : ca.optim_slots)
    EXPECT_EQ(0, std::memcmp(t.raw(), cb.optim_slots.at(name).raw(), t.nbytes())) << name;
}

}  // namespace
}  // namespace safnet
