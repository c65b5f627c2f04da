// Optimizers and schedules: torch.optim semantics step for step, schedule shapes, dtype names.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "host/check.h"
#include "host/dtype.h"
#include "host/optim.h"
#include "host/schedule.h"
#include "tests/skip.h"

namespace safnet {
namespace {

std::vector<float> run_optimizer(const OptimConfig& cfg, float lr) {
  ParamStore store;
  Tensor& w = store.add("w", Tensor({4}), ParamRole::weight, LayerKind::linear);
  const float w0[] = {0.5f, -1.25f, 2.0f, -0.125f};
  const float gs[3][4] = {{0.1f, -0.2f, 0.3f, 0.0f}, {-0.05f, 0.4f, 0.1f, 0.2f}, {0.3f, 0.3f, -0.3f, -0.1f}};
  std::copy(w0, w0 + 4, w.data<float>());
  Optimizer opt(cfg);
  for (const auto& g : gs) {
    Tensor grad({4});
    std::copy(g, g + 4, grad.data<float>());
    opt.step(store, {{"w", &grad}}, lr);
  }
  return {w.data<float>(), w.data<float>() + 4};
}

TEST(Optim, MatchesTorchOptimStepForStep) {
  FILE* p = popen("/usr/bin/python3 " SAFNET_SOURCE_DIR "/tests/parity/torch_optim.py 2>/dev/null", "r");
  std::map<std::string, std::vector<double>> ref;
  char line[512];
  while (p && std::fgets(line, sizeof line, p)) {
    std::istringstream is(line);
    std::string name;
    is >> name;
    double v;
    while (is >> v) ref[name].push_back(v);
  }
  if (p) pclose(p);
  if (ref.size() != 3) SAFNET_SKIP_OR_FAIL("python3-torch is not installed: optimizer parity not checked");
  OptimConfig sgd;
  sgd.weight_decay = 1e-3f;
  OptimConfig nesterov;
  nesterov.nesterov = true;
  nesterov.weight_decay = 5e-4f;
  OptimConfig adamw;
  adamw.kind = "adamw";
  adamw.weight_decay = 1e-2f;
  const std::vector<std::pair<std::string, std::vector<float>>> got{
      {"sgd", run_optimizer(sgd, 0.1f)}, {"nesterov", run_optimizer(nesterov, 0.1f)}, {"adamw", run_optimizer(adamw, 1e-2f)}};
  for (const auto& [name, w] : got)
    for (int i = 0; i < 4; ++i)  // a few f32 roundings per step on values of order 1
      EXPECT_NEAR(w[i], ref[name][i], 2e-6) << name << "[" << i << "]";
}

TEST(Optim, UnknownOptimizerListsValidOnes) {
  OptimConfig c;
  c.kind = "adam";
  EXPECT_THROW(Optimizer{c}, Error);
}

TEST(Schedule, CosineWithWarmup) {
  ScheduleConfig s;
  s.base_lr = 0.1f;
  s.warmup_epochs = 2;
  EXPECT_FLOAT_EQ(schedule_lr(s, 0, 10), 0.0f);
  EXPECT_FLOAT_EQ(schedule_lr(s, 1, 10), 0.05f);
  EXPECT_FLOAT_EQ(schedule_lr(s, 2, 10), 0.1f);
  EXPECT_NEAR(schedule_lr(s, 6, 10), 0.05f, 1e-7);
  EXPECT_NEAR(schedule_lr(s, 10, 10), 0.0f, 1e-9);
}

TEST(Schedule, StepMilestones) {
  ScheduleConfig s;
  s.kind = "step";
  s.base_lr = 1.0f;
  s.milestones = {3, 6};
  s.gamma = 0.1f;
  EXPECT_FLOAT_EQ(schedule_lr(s, 2.9, 9), 1.0f);
  EXPECT_FLOAT_EQ(schedule_lr(s, 3, 9), 0.1f);
  EXPECT_NEAR(schedule_lr(s, 7, 9), 0.01f, 1e-8);
  s.kind = "linear";
  EXPECT_THROW(schedule_lr(s, 0, 9), Error);
}

TEST(DTypeNames, ParseAndPrintRoundTrip) {
  for (const char* n : {"f32", "f16", "bf16", "u8", "i32", "fixed2.5", "fixed0.7", "fixed7.0"})
    EXPECT_EQ(DType::parse(n).name(), n);
  EXPECT_EQ(DType::parse("fixed2.5"), DType::fixed(2, 5));
  EXPECT_EQ(DType::parse("fixed2.5").size(), 1u);
  for (const char* bad : {"f64", "fixed2.6", "fixed2", "fixed-1.8", "fixed2.5x", ""}) EXPECT_THROW(DType::parse(bad), Error) << bad;
}

}  // namespace
}  // namespace safnet
