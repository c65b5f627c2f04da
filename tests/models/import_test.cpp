// State-dict import: names and shapes checked, every problem listed, dtypes converted,
// num_batches_tracked ignored, a resized classifier re-initialised.
#include <gtest/gtest.h>

#include <cstring>

#include "cuda/numeric.h"
#include "host/check.h"
#include "models/import.h"

namespace safnet {
namespace {

ModelConfig small_resnet18() {
  ModelConfig cfg = default_model_config("resnet18");
  cfg.height = cfg.width = 32;
  return cfg;
}

// A state dict as PyTorch would save it: every parameter and buffer, plus num_batches_tracked.
SafetensorsFile state_dict_of(const ParamStore& params) {
  SafetensorsFile f;
  for (const ParamInfo& p : params.all()) {
    f.tensors.emplace_back(p.name, p.value.clone());
    if (p.role == ParamRole::bn_running_var) {
      const std::string bn = p.name.substr(0, p.name.size() - std::strlen("running_var"));
      f.tensors.emplace_back(bn + "num_batches_tracked", Tensor({}, DType::i32()));
    }
  }
  return f;
}

std::string import_error(const SafetensorsFile& f, const ModelConfig& cfg) {
  try {
    import_state_dict(f, cfg, ImportOptions{}, "weights.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Import, TakesEveryTensorByName) {
  const ModelConfig cfg = small_resnet18();
  const ParamStore src = init_params(cfg, 42);
  const ImportResult r = import_state_dict(state_dict_of(src), cfg, ImportOptions{}, "w");
  EXPECT_EQ(r.checkpoint.model.arch, "resnet18");
  EXPECT_EQ(r.checkpoint.model.classes, 1000);
  EXPECT_EQ(r.ignored.size(), 20u);
  EXPECT_TRUE(r.reinitialised.empty());
  for (const ParamInfo& p : src.all()) {
    const Tensor& got = r.checkpoint.params.at(p.name).value;
    ASSERT_EQ(got.shape(), p.value.shape()) << p.name;
    EXPECT_EQ(0, std::memcmp(got.raw(), p.value.raw(), p.value.nbytes())) << p.name;
  }
}

TEST(Import, ClassesComeFromTheClassifier) {
  ModelConfig cfg = small_resnet18();
  cfg.classes = 37;
  const ParamStore src = init_params(cfg, 1);
  cfg.classes = 10;  // ignored: the file decides
  EXPECT_EQ(import_state_dict(state_dict_of(src), cfg, ImportOptions{}, "w").checkpoint.model.classes, 37);
}

TEST(Import, ListsEveryMissingUnexpectedAndWrongShapedTensor) {
  const ModelConfig cfg = small_resnet18();
  SafetensorsFile f = state_dict_of(init_params(cfg, 0));
  std::vector<std::pair<std::string, Tensor>> kept;
  for (auto& [name, t] : f.tensors) {
    if (name == "layer2.0.downsample.0.weight" || name == "layer4.1.bn2.running_mean") continue;
    if (name == "layer1.0.conv1.weight") t = Tensor({64, 64, 1, 1});
    if (name == "layer3.1.bn1.bias") t = Tensor({255});
    kept.emplace_back(name, t);
  }
  kept.emplace_back("layer5.0.conv1.weight", Tensor({3}));
  kept.emplace_back("head.weight", Tensor({3}));
  f.tensors = kept;
  const std::string msg = import_error(f, cfg);
  ASSERT_FALSE(msg.empty());
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  for (const char* s : {"weights.safetensors", "resnet18", "missing 2", "layer2.0.downsample.0.weight",
                        "layer4.1.bn2.running_mean", "unexpected 2", "layer5.0.conv1.weight", "head.weight",
                        "wrong shape 2", "layer1.0.conv1.weight (64, 64, 1, 1) (needs (64, 64, 3, 3))",
                        "layer3.1.bn1.bias (255) (needs (256))"})
    EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
  EXPECT_EQ(msg.find("num_batches_tracked"), std::string::npos) << msg;
}

TEST(Import, CifarNamesAreNotImageNetNames) {
  ModelConfig cifar;
  const SafetensorsFile f = state_dict_of(init_params(cifar, 0));
  const std::string msg = import_error(f, small_resnet18());
  EXPECT_NE(msg.find("missing"), std::string::npos);
  EXPECT_NE(msg.find("linear.weight"), std::string::npos) << msg;  // unexpected
  EXPECT_NE(msg.find("fc.weight"), std::string::npos) << msg;      // missing
}

TEST(Import, HalfPrecisionTensorsBecomeF32) {
  ModelConfig cfg;
  cfg.arch = "cnn";
  const ParamStore src = init_params(cfg, 3);
  SafetensorsFile f = state_dict_of(src);
  Tensor& w = f.tensors.front().second;  // conv1.weight
  Tensor h(w.shape(), DType::f16());
  for (std::int64_t i = 0; i < w.numel(); ++i) h.data<std::uint16_t>()[i] = f32_to_f16_bits(w.data<float>()[i]);
  w = h;
  const ImportResult r = import_state_dict(f, cfg, ImportOptions{}, "w");
  const Tensor& got = r.checkpoint.params.at("conv1.weight").value;
  ASSERT_EQ(got.dtype(), DType::f32());
  for (std::int64_t i = 0; i < got.numel(); ++i)
    EXPECT_EQ(got.data<float>()[i], f16_bits_to_f32(h.data<std::uint16_t>()[i]));
}

TEST(Import, IntegerParameterIsAnError) {
  ModelConfig cfg;
  cfg.arch = "mlp";
  cfg.height = cfg.width = 4;
  cfg.in_channels = 1;
  SafetensorsFile f = state_dict_of(init_params(cfg, 0));
  f.tensors.back().second = Tensor(f.tensors.back().second.shape(), DType::i32());  // fc2.bias
  EXPECT_NE(import_error(f, cfg).find("fc2.bias"), std::string::npos);
}

TEST(Import, OtherClassCountReinitialisesTheClassifier) {
  const ModelConfig cfg = small_resnet18();
  const ParamStore src = init_params(cfg, 5);
  ImportOptions opt;
  opt.classes = 10;
  const ImportResult r = import_state_dict(state_dict_of(src), cfg, opt, "w");
  EXPECT_EQ(r.checkpoint.model.classes, 10);
  EXPECT_EQ(r.reinitialised, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_EQ(r.checkpoint.params.at("fc.weight").value.shape(), (Shape{10, 512}));
  const Tensor& a = r.checkpoint.params.at("layer4.1.conv2.weight").value;
  EXPECT_EQ(0, std::memcmp(a.raw(), src.at("layer4.1.conv2.weight").value.raw(), a.nbytes()));
  opt.classes = 1000;  // the file's own size: nothing re-initialised
  EXPECT_TRUE(import_state_dict(state_dict_of(src), cfg, opt, "w").reinitialised.empty());
}

TEST(Import, ClassifierNames) {
  EXPECT_EQ(classifier_names(small_resnet18()), (std::pair<std::string, std::string>{"fc.weight", "fc.bias"}));
  EXPECT_EQ(classifier_names(ModelConfig{}), (std::pair<std::string, std::string>{"linear.weight", "linear.bias"}));
}

}  // namespace
}  // namespace safnet
