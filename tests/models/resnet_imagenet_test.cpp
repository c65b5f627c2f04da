// ImageNet ResNet-18/34: torchvision's parameter counts, names and shapes, SAF placement, sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "host/executor.h"
#include "models/model.h"

namespace safnet {
namespace {

// sum(p.numel() for p in torchvision.models.resnetXX().parameters())
TEST(ResNetImageNet, ParameterCountsEqualTorchvision) {
  EXPECT_EQ(init_params(default_model_config("resnet18"), 0).trainable_count(), 11689512);
  EXPECT_EQ(init_params(default_model_config("resnet34"), 0).trainable_count(), 21797672);
}

TEST(ResNetImageNet, DefaultsAreImageNetSized) {
  const ModelConfig cfg = default_model_config("resnet34");
  EXPECT_EQ(cfg.in_channels, 3);
  EXPECT_EQ(cfg.height, 224);
  EXPECT_EQ(cfg.width, 224);
  EXPECT_EQ(cfg.classes, 1000);
}

TEST(ResNetImageNet, TorchvisionNamesAndShapes) {
  const ParamStore p = init_params(default_model_config("resnet18"), 0);
  EXPECT_EQ(p.at("conv1.weight").value.shape(), (Shape{64, 3, 7, 7}));
  EXPECT_EQ(p.at("bn1.running_var").value.shape(), (Shape{64}));
  EXPECT_EQ(p.at("layer1.1.conv2.weight").value.shape(), (Shape{64, 64, 3, 3}));
  EXPECT_EQ(p.at("layer2.0.conv1.weight").value.shape(), (Shape{128, 64, 3, 3}));
  EXPECT_EQ(p.at("layer2.0.downsample.0.weight").value.shape(), (Shape{128, 64, 1, 1}));
  EXPECT_EQ(p.at("layer4.0.downsample.1.running_mean").value.shape(), (Shape{512}));
  EXPECT_EQ(p.at("fc.weight").value.shape(), (Shape{1000, 512}));
  EXPECT_EQ(p.at("fc.bias").value.shape(), (Shape{1000}));
  EXPECT_EQ(p.find("layer1.0.downsample.0.weight"), nullptr);  // stage 1 keeps its width and size
  EXPECT_EQ(p.find("conv1.bias"), nullptr);                    // torchvision's convs have no bias
  const ParamStore q = init_params(default_model_config("resnet34"), 0);
  EXPECT_NE(q.find("layer3.5.conv2.weight"), nullptr);
  EXPECT_EQ(q.find("layer3.6.conv2.weight"), nullptr);
  EXPECT_NE(q.find("layer4.2.bn2.weight"), nullptr);
}

TEST(ResNetImageNet, SafOnConvAndLinearWeightsHonouringFirstAndLast) {
  ModelConfig cfg = default_model_config("resnet18");
  cfg.saf.kind = SafKind::softsign;
  EXPECT_EQ(weight_saf(cfg, "conv1.weight").kind, SafKind::softsign);
  EXPECT_EQ(weight_saf(cfg, "layer3.0.downsample.0.weight").kind, SafKind::softsign);
  EXPECT_EQ(weight_saf(cfg, "fc.weight").kind, SafKind::softsign);
  EXPECT_EQ(weight_saf(cfg, "fc.bias").kind, SafKind::none);
  EXPECT_EQ(weight_saf(cfg, "layer3.0.downsample.1.weight").kind, SafKind::none);
  cfg.saf_first = cfg.saf_last = false;
  EXPECT_EQ(weight_saf(cfg, "conv1.weight").kind, SafKind::none);
  EXPECT_EQ(weight_saf(cfg, "fc.weight").kind, SafKind::none);
  EXPECT_EQ(weight_saf(cfg, "layer1.0.conv1.weight").kind, SafKind::softsign);
}

Shape logits_shape(ModelConfig cfg, int n) {
  Graph g;
  const ValueId logits = build_forward(cfg, g, g.input("images", {n, cfg.in_channels, cfg.height, cfg.width}), false);
  return g.value(logits).shape;
}

// The spatial path: 224 -> 112 (stem) -> 56 (pool) -> 56, 28, 14, 7 -> global pool; smaller
// inputs work as long as every stage keeps at least one pixel.
TEST(ResNetImageNet, AnyInputSizeThatKeepsAPixel) {
  ModelConfig cfg = default_model_config("resnet18");
  EXPECT_EQ(logits_shape(cfg, 2), (Shape{2, 1000}));
  cfg.height = cfg.width = 32;
  cfg.classes = 7;
  EXPECT_EQ(logits_shape(cfg, 3), (Shape{3, 7}));
  cfg.height = 40;
  cfg.width = 56;
  EXPECT_EQ(logits_shape(cfg, 1), (Shape{1, 7}));
}

// Runs, and a batch's images are independent (eval mode): logits of a batch equal those of each
// image alone, up to f32 summation order.
TEST(ResNetImageNet, ForwardRunsAtSmallSize) {
  ModelConfig cfg = default_model_config("resnet18");
  cfg.height = cfg.width = 32;
  cfg.classes = 5;
  ParamStore params = init_params(cfg, 1);
  auto run = [&](const Tensor& x) {
    Graph g;
    const ValueId in = g.input("images", x.shape());
    const ValueId logits = build_forward(cfg, g, in, false);
    Executor ex(g, {logits});
    ex.bind_params(params);
    ex.set_input(in, x);
    ex.run();
    return ex.get(logits).clone();
  };
  Tensor x({2, 3, 32, 32});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>((i * 37 % 101) / 50.0 - 1.0);
  const Tensor both = run(x);
  Tensor second({1, 3, 32, 32});
  std::copy(x.data<float>() + 3 * 32 * 32, x.data<float>() + 2 * 3 * 32 * 32, second.data<float>());
  const Tensor alone = run(second);
  double scale = 0;
  for (int j = 0; j < 5; ++j) scale = std::max(scale, std::fabs(double(alone.data<float>()[j])));
  ASSERT_GT(scale, 0.0);
  for (int j = 0; j < 5; ++j) {
    EXPECT_TRUE(std::isfinite(both.data<float>()[j]));
    EXPECT_NEAR(both.data<float>()[5 + j], alone.data<float>()[j], 1e-5 * scale);
  }
}

}  // namespace
}  // namespace safnet
