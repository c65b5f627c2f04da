// --device end to end: training (with augmentation on the device) and fault campaigns on the CUDA
// backend, run on the simulator, follow the CPU step for step and trial for trial; asking for a
// GPU that is not there fails clearly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "app/results.h"
#include "tests/tools/tool_test_util.h"
#include "app/devices.h"
#include "app/trainer.h"
#include "tests/skip.h"

namespace safnet {
namespace {

TrainConfig cnn_config(const Dataset& d, const std::string& out) {
  TrainConfig cfg;
  cfg.model.arch = "cnn";
  cfg.model.in_channels = d.channels;
  cfg.model.height = d.height;
  cfg.model.width = d.width;
  cfg.model.classes = d.classes;
  cfg.model.saf.kind = SafKind::tanh;
  cfg.dataset = "fashion-mnist";
  cfg.epochs = 1;
  cfg.batch = 32;
  cfg.schedule.base_lr = 0.05f;
  cfg.optim.weight_decay = 5e-4f;
  cfg.out_dir = out;
  cfg.quiet = true;
  cfg.augment = AugmentConfig{4, true};  // on a device the crop and flip run in a kernel
  return cfg;
}

Checkpoint fresh(const TrainConfig& cfg) {
  Checkpoint ck;
  ck.model = cfg.model;
  ck.params = init_params(cfg.model, 5);
  return ck;
}

TEST(DeviceSim, TrainingFollowsTheCpuStepForStep) {
  if (!test::have_fashion_mnist()) SAFNET_SKIP_OR_FAIL("dataset-fashion-mnist is not installed");
  const Dataset train_set = load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist", Split::train, 192);
  const Dataset test_set = load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist", Split::test, 64);
  const std::string dir = test::temp_dir("device_train");
  const TrainConfig on_cpu = cnn_config(train_set, dir + "/cpu"), on_sim = cnn_config(train_set, dir + "/sim");
  const TrainResult cpu = train(on_cpu, backend_for(Device::parse("cpu")), train_set, test_set, fresh(on_cpu));
  const TrainResult sim = train(on_sim, backend_for(Device::parse("sim")), train_set, test_set, fresh(on_sim));
  ASSERT_EQ(cpu.step_losses.size(), 6u);
  ASSERT_EQ(sim.step_losses.size(), cpu.step_losses.size());
  // Reordered float32 sums drift by a few ulps per step; 1e-4 relative leaves room for many steps
  // of that and catches any real difference (one wrong kernel moves the loss by percents).
  for (std::size_t i = 0; i < cpu.step_losses.size(); ++i)
    EXPECT_NEAR(sim.step_losses[i], cpu.step_losses[i], 1e-4 * std::fabs(cpu.step_losses[i])) << "step " << i;
  EXPECT_NEAR(sim.final_loss, cpu.final_loss, 1e-4 * cpu.final_loss);
  EXPECT_EQ(sim.final_top1, cpu.final_top1);
}

TEST(DeviceSim, FaultCampaignRecordsTheSameFlipsAndAccuracies) {
  if (!test::have_fashion_mnist()) SAFNET_SKIP_OR_FAIL("dataset-fashion-mnist is not installed");
  const std::string dir = test::temp_dir("device_faults");
  auto r = test::run("train --model mlp --saf tanh --epochs 1 --limit 512 --batch 64 --quiet --device cpu --out " + dir +
                     "/mlp");
  ASSERT_EQ(r.code, 0) << r.output;
  std::map<std::tuple<std::string, std::int64_t>, TrialRecord> by[2];
  const char* devices[2] = {"cpu", "sim"};
  for (int d = 0; d < 2; ++d) {
    const std::string out = dir + "/" + devices[d] + ".jsonl";
    r = test::run("faults --checkpoint " + dir + "/mlp/checkpoint.safetensors --limit 200 --dtype f32,f16,fixed2.5 "
                  "--ber 1e-3 --trials 3 --seed 9 --quiet --verify-sampler --device " + std::string(devices[d]) +
                  " --out " + out);
    ASSERT_EQ(r.code, 0) << r.output;
    for (const TrialRecord& t : read_results(out)) by[d][{t.dtype, t.trial}] = t;
  }
  ASSERT_EQ(by[0].size(), 12u);
  ASSERT_EQ(by[1].size(), by[0].size());
  for (const auto& [key, c] : by[0]) {
    const TrialRecord& s = by[1].at(key);
    EXPECT_EQ(s.campaign, c.campaign);
    EXPECT_EQ(s.flips, c.flips) << std::get<0>(key) << " trial " << std::get<1>(key);
    EXPECT_EQ(s.nonfinite, c.nonfinite);
    EXPECT_EQ(s.top1, c.top1) << std::get<0>(key) << " trial " << std::get<1>(key);
    EXPECT_EQ(s.top5, c.top5);
    EXPECT_NEAR(s.loss, c.loss, 1e-5 * (1 + std::fabs(c.loss)));
  }
  EXPECT_GT(by[0].at({"f32", 0}).flips, 1000);  // the trials do flip bits
  EXPECT_EQ(by[1].at({"f32", 0}).math, "fp32");
  // A campaign on tensor cores says so in every record, and flips the very bits the CPU's flipped:
  // the math mode changes the arithmetic, never the fault sample or the stored words.
  r = test::run("faults --checkpoint " + dir + "/mlp/checkpoint.safetensors --limit 200 --dtype f16 --ber 1e-3 "
                "--trials 3 --seed 9 --quiet --device sim --math bf16 --out " + dir + "/bf16.jsonl");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::vector<TrialRecord> bf16 = read_results(dir + "/bf16.jsonl");
  ASSERT_EQ(bf16.size(), by[0].size() / 3);  // the f16 records: what the CPU campaign wrote per dtype
  for (const TrialRecord& t : bf16) {
    EXPECT_EQ(t.math, "bf16") << t.trial;
    EXPECT_EQ(t.flips, by[0].at({"f16", t.trial}).flips) << t.trial;
    EXPECT_EQ(t.nonfinite, by[0].at({"f16", t.trial}).nonfinite) << t.trial;
  }
  // Adding trials of another mode to that file is refused before any runs.
  r = test::run("faults --checkpoint " + dir + "/mlp/checkpoint.safetensors --limit 200 --dtype f16 --ber 1e-3 "
                "--trials 4 --seed 9 --quiet --device sim --math tf32 --out " + dir + "/bf16.jsonl");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("its trials ran with --math bf16 and this run with --math tf32"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_results(dir + "/bf16.jsonl").size(), bf16.size());
  // Replay of one trial on the simulator matches what the CPU recorded.
  r = test::run("faults --checkpoint " + dir + "/mlp/checkpoint.safetensors --limit 200 --dtype f16 --ber 1e-3 "
                "--seed 9 --replay 1 --device sim --out " + dir + "/cpu.jsonl");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("recorded trial matches"), std::string::npos) << r.output;
}

TEST(DeviceCli, MathModesAreCheckedAndTheCpuRefusesTensorCoreModes) {
  auto r = test::run("eval --checkpoint /nonexistent.safetensors --device cpu --math bf16");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("cpu: --math bf16 runs on tensor cores, which only the CUDA backend has"), std::string::npos)
      << r.output;
  r = test::run("eval --checkpoint /nonexistent.safetensors --device sim --math fp16");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--math fp16: not a math mode (fp32, 3xtf32, tf32, bf16)"), std::string::npos) << r.output;
  r = test::run("predict --checkpoint /nonexistent.safetensors --images x --out y --math tf32");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("--math tf32 runs on tensor cores"), std::string::npos) << r.output;
}

TEST(DeviceCli, AskingForAMissingGpuIsAClearError) {
  const auto r = test::run("eval --checkpoint /nonexistent.safetensors --device cuda:3");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(r.output.find("no CUDA GPU found") != std::string::npos ||
              r.output.find("no such GPU") != std::string::npos ||
              r.output.find("built without CUDA") != std::string::npos)
      << r.output;
  const auto bad = test::run("eval --checkpoint /nonexistent.safetensors --device tpu");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.output.find("unknown device 'tpu' (valid: cpu, cuda, cuda:N, sim)"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace safnet
