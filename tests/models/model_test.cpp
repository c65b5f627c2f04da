// Model definitions: parameter counts of the CIFAR ResNets, names, SAF placement.
#include <gtest/gtest.h>

#include <cstring>

#include "host/check.h"
#include "models/model.h"

namespace safnet {
namespace {

std::int64_t count(const std::string& arch) {
  ModelConfig cfg;
  cfg.arch = arch;
  return init_params(cfg, 0).trainable_count();
}

// Trainable parameters of the PyTorch CIFAR ResNet definition (He et al. option A, with batch
// norm), as counted by sum(p.numel() for p in model.parameters()).
TEST(Models, CifarResNetParameterCounts) {
  EXPECT_EQ(count("resnet20"), 269722);
  EXPECT_EQ(count("resnet32"), 464154);
  EXPECT_EQ(count("resnet44"), 658586);
  EXPECT_EQ(count("resnet56"), 853018);
  EXPECT_EQ(count("resnet110"), 1727962);
}

TEST(Models, ResNetUsesPyTorchNames) {
  ModelConfig cfg;
  ParamStore p = init_params(cfg, 0);
  EXPECT_NE(p.find("conv1.weight"), nullptr);
  EXPECT_NE(p.find("layer3.2.bn2.running_var"), nullptr);
  EXPECT_NE(p.find("linear.bias"), nullptr);
  EXPECT_EQ(p.at("layer2.0.conv1.weight").value.shape(), (Shape{32, 16, 3, 3}));
}

TEST(Models, SafCanSkipFirstAndLastLayer) {
  ModelConfig cfg;
  cfg.saf.kind = SafKind::tanh;
  cfg.saf_first = false;
  cfg.saf_last = false;
  EXPECT_EQ(weight_saf(cfg, "conv1.weight").kind, SafKind::none);
  EXPECT_EQ(weight_saf(cfg, "linear.weight").kind, SafKind::none);
  EXPECT_EQ(weight_saf(cfg, "layer1.0.conv1.weight").kind, SafKind::tanh);
  cfg.saf_first = cfg.saf_last = true;
  EXPECT_EQ(weight_saf(cfg, "conv1.weight").kind, SafKind::tanh);
  EXPECT_EQ(weight_saf(cfg, "linear.weight").kind, SafKind::tanh);
}

TEST(Models, UnknownArchitectureListsValidNames) {
  ModelConfig cfg;
  cfg.arch = "resnet21";
  try {
    init_params(cfg, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("resnet110"), std::string::npos);
  }
}

TEST(Models, InitIsDeterministicBySeed) {
  ModelConfig cfg;
  cfg.arch = "cnn";
  auto a = init_params(cfg, 5), b = init_params(cfg, 5), c = init_params(cfg, 6);
  const auto& wa = a.at("conv1.weight").value;
  EXPECT_EQ(0, std::memcmp(wa.raw(), b.at("conv1.weight").value.raw(), wa.nbytes()));
  EXPECT_NE(0, std::memcmp(wa.raw(), c.at("conv1.weight").value.raw(), wa.nbytes()));
}

}  // namespace
}  // namespace safnet
