// Autograd through whole graphs: gradients against finite differences along random directions,
// liveness planning, and shape errors at build time.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstring>

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
// min_checked: the fraction of parameter tensors that must get a kink-free step. Deep nets with
// batch norm spread any step over every unit, so early layers of a ResNet rarely get one.
void check_gradients(const std::string& arch, SafKind saf, int n, int c, int hw, double min_checked) {
  omp_set_num_threads(1);  // tiny shapes: threads cost more than they save
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
  // The outputs that decide which piece of a piecewise-linear function is active: ReLU outputs
  // and max-pool arg-maxes. Central differences are exact to O(eps^2) only when none changes.
  std::vector<ValueId> pieces;
  for (const Node& node : g.nodes()) {
    if (node.op == Op::relu) pieces.push_back(node.out[0]);
    if (node.op == Op::maxpool) pieces.push_back(node.out[1]);
  }
  keep.insert(keep.end(), pieces.begin(), pieces.end());
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
  auto pattern = [&]() {
    std::vector<bool> bits;
    for (ValueId v : pieces) {
      const Tensor& t = ex.get(v);
      for (std::int64_t i = 0; i < t.numel(); ++i)
        bits.push_back(t.dtype() == DType::i32() ? (t.data<std::int32_t>()[i] & 1) : t.data<float>()[i] > 0.0f);
    }
    return bits;
  };
  int checked = 0;
  for (auto [pv, gv] : grads) {
    ParamInfo& p = params.at(g.value(pv).name);
    ex.run();
    const Tensor grad = ex.get(gv).clone();
    const std::vector<bool> base = pattern();
    // Single elements, small steps; an element whose step flips a ReLU or max-pool decision is
    // skipped (the difference quotient straddles a kink there), until two are checked.
    int valid = 0;
    for (int attempt = 0; attempt < 8 && valid < 2; ++attempt) {
      const std::int64_t i = static_cast<std::int64_t>(r.next() % static_cast<std::uint64_t>(p.value.numel()));
      float& w = p.value.data<float>()[i];
      const float saved = w;
      const double eps = 1e-3;
      w = static_cast<float>(saved + eps);
      const double lp = loss_at();
      const bool same_plus = pattern() == base;
      w = static_cast<float>(saved - eps);
      const double lm = loss_at();
      const bool same_minus = pattern() == base;
      w = saved;
      if (!same_plus || !same_minus) continue;
      ++valid;
      const double numeric = (lp - lm) / (2 * eps);
      const double analytic = grad.data<float>()[i];
      // f32 rounding of the two losses (a few ulps of |loss|) over 2 eps, plus 2 % for the
      // O(eps^2) truncation of a smooth piece.
      const double tol = 0.02 * std::fabs(numeric) + 8.0 * 1.2e-7 * std::fabs(lp) / (2 * eps);
      EXPECT_NEAR(analytic, numeric, tol) << arch << " " << p.name << "[" << i << "]";
    }
    if (valid > 0) ++checked;
    ex.run();
  }
  EXPECT_GE(checked, min_checked * static_cast<double>(grads.size())) << arch << ": too few kink-free steps";
  omp_set_num_threads(omp_get_num_procs());
}

TEST(Graph, ResNetWithTanhGradientsMatchFiniteDifferences) { check_gradients("resnet20", SafKind::tanh, 3, 3, 8, 0.5); }
TEST(Graph, CnnGradientsMatchFiniteDifferences) { check_gradients("cnn", SafKind::none, 3, 1, 8, 1.0); }
TEST(Graph, CnnWithSoftsignGradientsMatchFiniteDifferences) { check_gradients("cnn", SafKind::softsign, 3, 1, 8, 1.0); }
TEST(Graph, MlpWithTanhCGradientsMatchFiniteDifferences) { check_gradients("mlp", SafKind::tanh_c, 4, 1, 6, 1.0); }

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
  Executor ex(g, {logits}, cpu_backend(), /*fuse=*/false);
  // Forward-only: activations die right after their readers, so the plan needs a few layers' worth.
  EXPECT_LT(ex.peak_bytes() * 5, ex.unplanned_bytes());
}

// run_range from any boundary (every node position when nothing is fused), with only the values
// live across it holding their clean contents (every other activation overwritten with NaN),
// gives a full run's logits and loss bit for bit.
void check_run_range_from_every_boundary(bool fuse) {
  SCOPED_TRACE(fuse ? "fused" : "node by node");
  ModelConfig cfg;  // resnet20: residual adds keep two values live across many positions
  cfg.height = cfg.width = 8;
  cfg.saf.kind = SafKind::tanh;
  ParamStore params = init_params(cfg, 5);
  Graph g;
  const ValueId x = g.input("images", {3, 3, 8, 8});
  const ValueId y = g.input("labels", {3}, DType::i32());
  const ValueId logits = build_forward(cfg, g, x, false);
  const ValueId loss = g.softmax_ce(logits, y, 0.0f).first;
  Executor ex(g, {logits, loss}, cpu_backend(), fuse);
  EXPECT_EQ(ex.fused_steps() > 0, fuse);
  ex.bind_params(params);
  Rng r(11);
  Tensor xt({3, 3, 8, 8});
  fill(xt, r, 1.0);
  Tensor yt({3}, DType::i32());
  for (int i = 0; i < 3; ++i) yt.data<std::int32_t>()[i] = i;
  ex.set_input(x, xt);
  ex.set_input(y, yt);
  ex.run();
  auto bytes = [](const Tensor& t) {
    return std::vector<std::uint8_t>(static_cast<const std::uint8_t*>(t.raw()), static_cast<const std::uint8_t*>(t.raw()) + t.nbytes());
  };
  const auto want_logits = bytes(ex.get(logits)), want_loss = bytes(ex.get(loss));
  const std::size_t n = ex.node_count();
  ASSERT_EQ(n, g.nodes().size());
  EXPECT_EQ(ex.first_reader(x), 0u);
  ASSERT_GE(g.find("linear.weight"), 0);
  EXPECT_EQ(ex.first_reader(g.find("linear.weight")), n - 2);  // linear, then softmax_ce
  EXPECT_EQ(ex.first_reader(loss), n);
  EXPECT_TRUE(ex.live_across(0).empty());
  std::size_t most_live = 0, boundaries = 0;
  for (std::size_t pos = 0; pos <= n; ++pos) {
    if (!ex.boundary(pos)) {
      EXPECT_THROW(ex.run_range(pos, n), Error);
      EXPECT_THROW(ex.live_across(pos), Error);
      continue;
    }
    ++boundaries;
    ex.run_range(0, pos);
    const std::vector<ValueId> live = ex.live_across(pos);
    most_live = std::max(most_live, live.size());
    std::vector<std::vector<std::uint8_t>> kept;
    for (ValueId v : live) kept.push_back(bytes(ex.get(v)));
    for (std::size_t v = 0; v < g.values().size(); ++v)
      if (g.values()[v].kind == ValueKind::activation) {
        Tensor& t = ex.get(static_cast<ValueId>(v));
        if (!t.defined()) continue;  // inside a fused step: never written
        std::memset(t.raw(), 0xff, t.nbytes());  // NaN in every f32
      }
    for (std::size_t i = 0; i < live.size(); ++i) std::memcpy(ex.get(live[i]).raw(), kept[i].data(), kept[i].size());
    ex.run_range(pos, n);
    EXPECT_EQ(bytes(ex.get(logits)), want_logits) << "from node " << pos << " of " << n;
    EXPECT_EQ(bytes(ex.get(loss)), want_loss) << "from node " << pos << " of " << n;
  }
  EXPECT_GE(most_live, 2u);
  EXPECT_EQ(boundaries, fuse ? n + 1 - 2 * 19 - 9 : n + 1);  // ResNet-20: 19 chains, 9 of them with add + relu
  EXPECT_THROW(ex.run_range(2, 1), Error);
  EXPECT_THROW(ex.run_range(0, n + 1), Error);
}

TEST(Executor, RunRangeFromAnyPositionWithTheLiveValuesEqualsAFullRun) {
  omp_set_num_threads(1);
  check_run_range_from_every_boundary(false);
  check_run_range_from_every_boundary(true);
}

TEST(Executor, RejectsBindingsOfTheWrongShape) {
  Graph g;
  const ValueId x = g.input("images", {2, 3});
  Executor ex(g, {});
  EXPECT_THROW(ex.bind(x, Tensor({3, 2})), Error);
}

}  // namespace
}  // namespace safnet
