// The architectures: CIFAR ResNets (He et al. 2016, option A shortcuts), ImageNet ResNet-18/34
// (torchvision's layout, option B shortcuts), a small CNN and an MLP. Parameter names follow the
// common PyTorch CIFAR ResNet definition (conv1, bn1, layerL.B.conv1, ..., linear) and
// torchvision's (..., layerL.0.downsample.0/1, fc), so checkpoints trained there import by name.
#include "models/model.h"

#include <algorithm>

#include "host/check.h"
#include "models/net_builder.h"

namespace safnet {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names{"resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                                                "resnet18", "resnet34", "cnn", "mlp"};
  return names;
}

namespace {

int resnet_blocks(const std::string& arch) {
  if (arch.rfind("resnet", 0) != 0) return 0;
  const int depth = std::stoi(arch.substr(6));
  return (depth - 2) / 6;
}

ValueId resnet_cifar(NetBuilder& b, ValueId x, const ModelConfig& cfg, const Saf& first, const Saf& last) {
  const int blocks = resnet_blocks(cfg.arch);
  Graph& g = b.graph();
  ValueId h = g.relu(b.batchnorm(b.conv(x, 16, 3, 1, 1, first, "conv1"), "bn1"), "relu1");
  int in_planes = 16;
  for (int stage = 0; stage < 3; ++stage) {
    const int planes = 16 << stage;
    for (int i = 0; i < blocks; ++i) {
      const int stride = (stage > 0 && i == 0) ? 2 : 1;
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(i);
      // The shortcut first: conv2 -> bn2 -> add -> relu2 then runs as one fused step (host/fusion.h).
      const ValueId shortcut = (stride != 1 || in_planes != planes) ? g.shortcut_a(h, stride, planes, p + ".shortcut") : h;
      ValueId y = g.relu(b.batchnorm(b.conv(h, planes, 3, stride, 1, cfg.saf, p + ".conv1"), p + ".bn1"), p + ".relu1");
      y = b.batchnorm(b.conv(y, planes, 3, 1, 1, cfg.saf, p + ".conv2"), p + ".bn2");
      h = g.relu(g.add(y, shortcut, p + ".add"), p + ".relu2");
      in_planes = planes;
    }
  }
  return b.linear(g.global_avgpool(h, "avgpool"), cfg.classes, true, last, "linear");
}

// torchvision's BasicBlock ResNet: 7x7/2 stem, 3x3/2 max pool, four stages of 64..512 planes whose
// first block (stages 2-4) downsamples by stride 2 with a 1x1 conv + batch norm on the shortcut.
ValueId resnet_imagenet(NetBuilder& b, ValueId x, const ModelConfig& cfg, const Saf& first, const Saf& last) {
  const std::vector<int> blocks = cfg.arch == "resnet18" ? std::vector<int>{2, 2, 2, 2} : std::vector<int>{3, 4, 6, 3};
  Graph& g = b.graph();
  ValueId h = g.relu(b.batchnorm(b.conv(x, 64, 7, 2, 3, first, "conv1"), "bn1"), "relu");
  h = g.maxpool(h, 3, 2, 1, "maxpool");
  int in_planes = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int planes = 64 << stage;
    for (int i = 0; i < blocks[static_cast<std::size_t>(stage)]; ++i) {
      const int stride = (stage > 0 && i == 0) ? 2 : 1;
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(i);
      ValueId y = g.relu(b.batchnorm(b.conv(h, planes, 3, stride, 1, cfg.saf, p + ".conv1"), p + ".bn1"), p + ".relu1");
      y = b.batchnorm(b.conv(y, planes, 3, 1, 1, cfg.saf, p + ".conv2"), p + ".bn2");
      const ValueId shortcut =
          (stride != 1 || in_planes != planes)
              ? b.batchnorm(b.conv(h, planes, 1, stride, 0, cfg.saf, p + ".downsample.0"), p + ".downsample.1")
              : h;
      h = g.relu(g.add(y, shortcut, p + ".add"), p + ".relu2");
      in_planes = planes;
    }
  }
  return b.linear(g.global_avgpool(h, "avgpool"), cfg.classes, true, last, "fc");
}

ValueId small_cnn(NetBuilder& b, ValueId x, const ModelConfig& cfg, const Saf& first, const Saf& last) {
  Graph& g = b.graph();
  ValueId h = g.relu(b.batchnorm(b.conv(x, 32, 3, 1, 1, first, "conv1"), "bn1"), "relu1");
  h = g.maxpool(h, 2, 2, 0, "pool1");
  h = g.relu(b.batchnorm(b.conv(h, 64, 3, 1, 1, cfg.saf, "conv2"), "bn2"), "relu2");
  h = g.maxpool(h, 2, 2, 0, "pool2");
  return b.linear(g.global_avgpool(h, "avgpool"), cfg.classes, true, last, "fc");
}

ValueId mlp(NetBuilder& b, ValueId x, const ModelConfig& cfg, const Saf& first, const Saf& last) {
  Graph& g = b.graph();
  ValueId h = g.relu(b.linear(g.flatten(x, "flatten"), 256, true, first, "fc1"), "relu1");
  return b.linear(h, cfg.classes, true, last, "fc2");
}

ValueId build(const ModelConfig& cfg, NetBuilder& b, ValueId x) {
  check_model_config(cfg);
  const Saf none{SafKind::none, 1.0f, cfg.saf.nan};
  const Saf first = cfg.saf_first ? cfg.saf : none;
  const Saf last = cfg.saf_last ? cfg.saf : none;
  if (cfg.arch == "cnn") return small_cnn(b, x, cfg, first, last);
  if (cfg.arch == "mlp") return mlp(b, x, cfg, first, last);
  if (cfg.arch == "resnet18" || cfg.arch == "resnet34") return resnet_imagenet(b, x, cfg, first, last);
  return resnet_cifar(b, x, cfg, first, last);
}

}  // namespace

void check_model_config(const ModelConfig& cfg) {
  const auto& names = model_names();
  if (std::find(names.begin(), names.end(), cfg.arch) == names.end()) {
    std::string valid;
    for (const auto& n : names) valid += " " + n;
    fail("unknown model '", cfg.arch, "' (valid:", valid, ")");
  }
  if (cfg.in_channels <= 0 || cfg.height <= 0 || cfg.width <= 0 || cfg.classes <= 1)
    fail("model ", cfg.arch, ": bad input geometry or class count");
}

ParamStore init_params(const ModelConfig& cfg, std::uint64_t seed) {
  ParamStore store;
  Graph g;
  NetBuilder b(g, false, &store, seed);
  build(cfg, b, g.input("images", {1, cfg.in_channels, cfg.height, cfg.width}));
  return store;
}

ValueId build_forward(const ModelConfig& cfg, Graph& g, ValueId x, bool train) {
  NetBuilder b(g, train, nullptr, 0);
  return build(cfg, b, x);
}

ModelConfig default_model_config(const std::string& arch) {
  ModelConfig cfg;
  cfg.arch = arch;
  if (arch == "resnet18" || arch == "resnet34") {
    cfg.height = cfg.width = 224;
    cfg.classes = 1000;
  }
  check_model_config(cfg);
  return cfg;
}

std::map<std::string, Saf> weight_safs(const ModelConfig& cfg) {
  Graph g;
  build_forward(cfg, g, g.input("images", {1, cfg.in_channels, cfg.height, cfg.width}), false);
  std::map<std::string, Saf> out;
  for (const Node& n : g.nodes())
    if (n.op == Op::conv2d || n.op == Op::linear) out[g.value(n.in[1]).name] = n.attrs.saf;
  return out;
}

Saf weight_saf(const ModelConfig& cfg, const std::string& param_name) {
  const auto safs = weight_safs(cfg);
  auto it = safs.find(param_name);
  return it != safs.end() ? it->second : Saf{SafKind::none, 1.0f, cfg.saf.nan};
}

}  // namespace safnet
