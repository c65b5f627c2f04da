// Starting a SAF model from pretrained weights: raw = tau^-1(W) reproduces the pretrained
// function (up to the clamp of tau^-1), raw mode copies, only SAF weights change, and the
// architectures must agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "host/check.h"
#include "host/executor.h"
#include "host/rng.h"
#include "host/saf.h"
#include "models/init_from.h"

namespace safnet {
namespace {

std::vector<Saf> safs_with_inverse() {
  return {parse_saf("tanh"), parse_saf("tanh_c", 0.5f), parse_saf("softsign"), parse_saf("arctan"),
          parse_saf("arctan2pi")};
}

// A pretrained-looking ResNet (small input): He-initialised weights and non-trivial batch
// norm parameters and running statistics.
Checkpoint pretrained(const std::string& arch, std::uint64_t seed) {
  Checkpoint ck;
  ck.model = default_model_config(arch);
  ck.model.height = ck.model.width = 32;
  ck.model.classes = 10;
  ck.params = init_params(ck.model, seed);
  Rng r(seed + 100);
  for (ParamInfo& p : ck.params.all()) {
    float* v = p.value.data<float>();
    for (std::int64_t i = 0; i < p.value.numel(); ++i) {
      switch (p.role) {
        case ParamRole::bn_weight: v[i] = static_cast<float>(0.5 + r.uniform()); break;
        case ParamRole::bn_bias:
        case ParamRole::bn_running_mean: v[i] = static_cast<float>(0.1 * r.normal()); break;
        case ParamRole::bn_running_var: v[i] = static_cast<float>(0.5 + r.uniform()); break;
        // Inside every SAF's tau([-8, 8]) (softsign's is the narrowest: 8/9), so that the
        // round trip is exact up to rounding; the clamp's own error is tested separately.
        case ParamRole::weight: v[i] = std::clamp(v[i], -0.85f, 0.85f); break;
        default: break;
      }
    }
  }
  return ck;
}

Tensor logits_of(const Checkpoint& ck, const Tensor& x) {
  Graph g;
  const ValueId in = g.input("images", x.shape());
  const ValueId logits = build_forward(ck.model, g, in, false);
  Executor ex(g, {logits});
  ParamStore params = ck.params.clone();
  ex.bind_params(params);
  ex.set_input(in, x);
  ex.run();
  return ex.get(logits).clone();
}

// tau(tau^-1(W)) = W up to f32 rounding where W lies inside tau([-8, 8]); beyond, tau^-1 is
// clamped to +-8, so the read weight is tau(+-8) and the error is exactly |W| - tau(8). The
// rounding part: tau^-1 and tau each round once or twice (atanhf/tanhf, one division and one
// addition for softsign, tanf/atanf and the 2/pi and pi/2 constants for arctan2pi), and each
// composition maps its input error back to W with gain at most 1, so 8 ulps of |W| bound it.
TEST(InitFrom, InverseRoundTripErrorIsBoundedByTheClamp) {
  const std::vector<float> ws{0.0f, 1e-30f, -3e-8f, 0.01f, -0.3f, 0.5f, -0.9f, 0.999f, -0.99999f, 1.0f, -1.2f,
                              1.5f, -1.5707f, 2.0f, -1e30f};
  for (const Saf& s : safs_with_inverse()) {
    const float edge = saf_value(s, kSafInverseClamp);
    for (float w : ws) {
      const float raw = saf_inverse(s, w);
      ASSERT_TRUE(std::isfinite(raw));
      EXPECT_LE(std::fabs(raw), kSafInverseClamp);
      const double err = std::fabs(static_cast<double>(saf_value(s, raw)) - w);
      const double bound = std::max(0.0, std::fabs(static_cast<double>(w)) - edge) + 8 * FLT_EPSILON * std::fabs(w);
      EXPECT_LE(err, bound) << saf_display_name(s) << " W=" << w << " raw=" << raw;
    }
  }
}

// The imported model and its SAF version compute the same logits before any training step. The
// weights agree to 8 ulps (above; these pretrained weights all lie well inside tau([-8, 8])),
// and a relative change d of every weight moves the logits by at most about depth * d of their
// scale (first order, batch norm affine in eval mode, ReLU 1-Lipschitz): 21 weight layers x 8
// ulps = 2e-5, checked at 1e-4 of the logit scale. Both runs use the same kernels in the same
// order, so f32 summation error cancels. Raw mode (raw = W) must then fail that same check,
// or the check could not tell the two apart.
void check_same_logits(const Checkpoint& src, bool check_raw_differs) {
  Rng r(9);
  Tensor x({2, 3, 32, 32});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(r.normal());
  const Tensor want = logits_of(src, x);
  double scale = 0;
  for (std::int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want.data<float>()[i])));
  ASSERT_GT(scale, 0.0);
  for (const Saf& s : safs_with_inverse()) {
    ModelConfig cfg = src.model;
    cfg.saf = s;
    const Tensor got = logits_of(init_from(src, cfg, InitMode::inverse, "pretrained.safetensors"), x);
    for (std::int64_t i = 0; i < want.numel(); ++i)
      EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-4 * scale) << saf_display_name(s) << " logit " << i;
    if (!check_raw_differs) continue;
    const Tensor raw = logits_of(init_from(src, cfg, InitMode::raw, "p"), x);
    double diff = 0;
    for (std::int64_t i = 0; i < want.numel(); ++i) diff = std::max(diff, std::fabs(double(raw.data<float>()[i]) - want.data<float>()[i]));
    EXPECT_GT(diff, 1e-4 * scale) << saf_display_name(s);
  }
}

TEST(InitFrom, SafResNet18StartsWithThePretrainedLogits) { check_same_logits(pretrained("resnet18", 7), false); }

TEST(InitFrom, SafResNet20StartsWithThePretrainedLogits) { check_same_logits(pretrained("resnet20", 7), true); }

TEST(InitFrom, OnlySafWeightsChange) {
  const Checkpoint src = pretrained("resnet20", 3);
  ModelConfig cfg = src.model;
  cfg.saf = parse_saf("tanh");
  cfg.saf_first = false;
  const Checkpoint ck = init_from(src, cfg, InitMode::inverse, "p");
  for (const ParamInfo& p : src.params.all()) {
    const Tensor& got = ck.params.at(p.name).value;
    const bool same = std::memcmp(got.raw(), p.value.raw(), p.value.nbytes()) == 0;
    const bool inverted = p.role == ParamRole::weight && p.name != "conv1.weight";
    EXPECT_EQ(same, !inverted) << p.name;
    if (!inverted) continue;
    for (std::int64_t i = 0; i < got.numel(); ++i)
      ASSERT_FLOAT_EQ(got.data<float>()[i], std::atanh(p.value.data<float>()[i])) << p.name << "[" << i << "]";
  }
  EXPECT_EQ(ck.optim_steps, 0);
  EXPECT_TRUE(ck.optim_slots.empty());
  EXPECT_EQ(ck.meta.count("epoch"), 0u);
}

TEST(InitFrom, RawModeCopiesTheWeights) {
  const Checkpoint src = pretrained("resnet20", 4);
  ModelConfig cfg = src.model;
  cfg.saf = parse_saf("softsign");
  const Checkpoint ck = init_from(src, cfg, InitMode::raw, "p");
  for (const ParamInfo& p : src.params.all())
    EXPECT_EQ(0, std::memcmp(ck.params.at(p.name).value.raw(), p.value.raw(), p.value.nbytes())) << p.name;
}

// A checkpoint trained with one SAF starts another with the same effective weights.
TEST(InitFrom, FromOneSafToAnother) {
  Checkpoint src = pretrained("resnet18", 5);
  src.model.saf = parse_saf("tanh");
  ModelConfig cfg = src.model;
  cfg.saf = parse_saf("softsign");
  const Checkpoint ck = init_from(src, cfg, InitMode::inverse, "p");
  const Tensor& a = src.params.at("layer2.0.downsample.0.weight").value;
  const Tensor& b = ck.params.at("layer2.0.downsample.0.weight").value;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const float w = std::tanh(a.data<float>()[i]);
    EXPECT_NEAR(saf_value(cfg.saf, b.data<float>()[i]), w, 8 * FLT_EPSILON * std::fabs(w));
  }
}

std::string init_error(const Checkpoint& src, const ModelConfig& cfg) {
  try {
    init_from(src, cfg, InitMode::inverse, "pre.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(InitFrom, ArchitectureMustMatch) {
  const Checkpoint src = pretrained("resnet18", 1);
  ModelConfig other;  // resnet20
  std::string msg = init_error(src, other);
  EXPECT_NE(msg.find("pre.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("resnet18"), std::string::npos) << msg;
  EXPECT_NE(msg.find("resnet20"), std::string::npos) << msg;
  ModelConfig classes = src.model;
  classes.classes = 100;
  msg = init_error(src, classes);
  EXPECT_NE(msg.find("100 classes"), std::string::npos) << msg;
  ModelConfig mlp;
  mlp.arch = "mlp";
  Checkpoint small;
  small.model = mlp;
  small.params = init_params(mlp, 0);
  mlp.height = 16;  // fc1 sees another input size
  msg = init_error(small, mlp);
  EXPECT_NE(msg.find("fc1.weight"), std::string::npos) << msg;
}

TEST(InitFrom, ParseInitMode) {
  EXPECT_EQ(parse_init_mode("inverse"), InitMode::inverse);
  EXPECT_EQ(parse_init_mode("raw"), InitMode::raw);
  try {
    parse_init_mode("tanh");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inverse raw"), std::string::npos);
  }
}

}  // namespace
}  // namespace safnet
