// Autograd through whole graphs: gradients against finite differences along random directions,
// liveness planning, and shape errors at build time.
#include <gtest/gtest.h>

#include <cmath>

#include "host/check.h"
#include "host/executor.h"
#include "host/rng.h"
#include "models/model.h"

namespace safnet {
namespace {

struct Net {
  ModelConfig cfg;
  ParamStore params;
  Graph g;
  ValueId x, y, logits, loss;
  std::map<ValueId, ValueId> grads;
};

void fill(Tensor& t, Rng& r, double scale) {
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(scale * r.normal());
}

// d loss / d p along a random direction, by central differences, vs the graph's gradient.
void check_gradients(const std::string& arch, SafKind saf, int n, int c, int hw) {
  ModelConfig cfg;
  cfg.arch = arch;
  cfg.in_channels = c;
  cfg.height = cfg.width = hw;
  cfg.classes = 5;
  cfg.saf.kind = saf;
  cfg.saf.c = 0.5f;
  ParamStore params = init_params(cfg, 7);
  Graph g;
  const ValueId x = g.input("images", {n, c, hw, hw});
  const ValueId y = g.input("labels", {n}, DType::i32());
  const ValueId logits = build_forward(cfg, g, x, true);
  const ValueId loss = g.softmax_ce(logits, y, 0.1f).first;
  auto grads = g.backward(loss);
  std::vector<ValueId> keep{loss};
  for (auto [p, gv] : grads) keep.push_back(gv);
  Executor ex(g, keep);
  ex.bind_params(params);
  Rng r(3);
  Tensor xt({n, c, hw, hw});
  fill(xt, r, 1.0);
  Tensor yt({n}, DType::i32());
  for (int i = 0; i < n; ++i) yt.data<std::int32_t>()[i] = i % cfg.classes;
  ex.set_input(x, xt);
  ex.set_input(y, yt);
  ex.run();
  EXPECT_LT(ex.peak_bytes(), ex.unplanned_bytes());

  auto loss_at = [&]() {
    ex.run();
    return static_cast<double>(ex.get(loss).data<float>()[0]);
  };
  int checked = 0;
  for (auto [pv, gv] : grads) {
    ParamInfo& p = params.at(g.value(pv).name);
    ex.run();
    const Tensor grad = ex.get(gv).clone();
    Tensor dir(p.value.shape());
    fill(dir, r, 1.0);
    double analytic = 0, dir_norm = 0;
    for (std::int64_t i = 0; i < dir.numel(); ++i) {
      analytic += static_cast<double>(grad.data<float>()[i]) * dir.data<float>()[i];
      dir_norm += static_cast<double>(dir.data<float>()[i]) * dir.data<float>()[i];
    }
    const Tensor saved = p.value.clone();
    const double rms = std::sqrt(dir_norm / static_cast<double>(dir.numel()));
    auto shift = [&](double s) {
      for (std::int64_t i = 0; i < dir.numel(); ++i)
        p.value.data<float>()[i] = static_cast<float>(saved.data<float>()[i] + s * dir.data<float>()[i]);
    };
    // Central differences at three step sizes: large steps may cross ReLU/max-pool kinks, small
    // ones lose digits to the f32 loss. The gradient must match the estimate at one of them
    // within 2 % plus that step's rounding floor (f32 loss error ~4e-7 |loss| over 2 eps).
    double best = 1e300, best_numeric = 0, best_tol = 0;
    for (double step : {3e-3, 1e-3, 3e-4}) {
      const double eps = step / rms;
      shift(eps);
      const double lp = loss_at();
      shift(-eps);
      const double lm = loss_at();
      const double numeric = (lp - lm) / (2 * eps);
      const double tol = 0.02 * std::fabs(numeric) + 4e-7 * std::fabs(lp) / eps + 1e-5;
      if (std::fabs(analytic - numeric) - tol < best - best_tol) {
        best = std::fabs(analytic - numeric);
        best_numeric = numeric;
        best_tol = tol;
      }
    }
    shift(0);
    EXPECT_LE(best, best_tol) << arch << " " << p.name << ": analytic " << analytic << " numeric " << best_numeric;
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(params.all().size()) - 2 * [&] {
    int bn = 0;
    for (auto& p : params.all()) bn += p.role == ParamRole::bn_running_mean;
    return bn;
  }());
}

TEST(Graph, ResNetGradientsMatchFiniteDifferences) { check_gradients("resnet20", SafKind::none, 3, 3, 8); }
TEST(Graph, ResNetWithTanhGradientsMatchFiniteDifferences) { check_gradients("resnet20", SafKind::tanh, 2, 3, 8); }
TEST(Graph, CnnWithSoftsignGradientsMatchFiniteDifferences) { check_gradients("cnn", SafKind::softsign, 3, 1, 8); }
TEST(Graph, MlpWithTanhCGradientsMatchFiniteDifferences) { check_gradients("mlp", SafKind::tanh_c, 4, 1, 6); }

TEST(Graph, ShapeMismatchIsRejectedAtBuildTime) {
  Graph g;
  const ValueId a = g.input("a", {2, 3, 4, 4});
  const ValueId b = g.input("b", {2, 3, 4, 5});
  EXPECT_THROW(g.add(a, b), Error);
  const ValueId w = g.param("w", {8, 4, 3, 3});
  EXPECT_THROW(g.conv2d(a, w, OpAttrs{}, "conv"), Error);
}

TEST(Executor, PlansLessMemoryThanKeepingEverything) {
  ModelConfig cfg;
  ParamStore params = init_params(cfg, 1);
  Graph g;
  const ValueId x = g.input("images", {4, 3, 32, 32});
  const ValueId logits = build_forward(cfg, g, x, false);
  Executor ex(g, {logits});
  // Forward-only: activations die right after their readers, so the plan needs a few layers' worth.
  EXPECT_LT(ex.peak_bytes() * 5, ex.unplanned_bytes());
}

TEST(Executor, RejectsBindingsOfTheWrongShape) {
  Graph g;
  const ValueId x = g.input("images", {2, 3});
  Executor ex(g, {});
  EXPECT_THROW(ex.bind(x, Tensor({3, 2})), Error);
}

}  // namespace
}  // namespace safnet
