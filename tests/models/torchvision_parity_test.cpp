// Parity with PyTorch of imported ResNets: a random torchvision ResNet-18 and a CIFAR ResNet-20
// from tools/torch_reference.py, saved as .pth, exported by tools/export_torch.py, imported, and
// run on the same inputs in eval mode, on the CPU backend and on the CUDA backend (on the
// simulator, or a GPU where there is one). Skips, saying so, where python3-torch is missing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "host/check.h"
#include "host/executor.h"
#include "models/import.h"
#include "app/devices.h"
#include "app/stored_model.h"
#include "tests/skip.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

bool have_torchvision() { return std::system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") == 0; }

std::string temp_dir(const std::string& name) { return test::scratch_dir(name).string(); }

void python(const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " + args + " >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

Tensor forward(const Checkpoint& ck, const Tensor& x, Backend& backend) {
  Graph g;
  const ValueId in = g.input("images", x.shape());
  const ValueId logits = build_forward(ck.model, g, in, false);
  Executor ex(g, {logits}, backend);
  ParamStore params = params_on(backend, ck.params.clone());
  ex.bind_params(params);
  ex.set_input(in, backend.to_device(x));
  ex.run();
  return backend.to_host(ex.get(logits)).clone();
}

// Relative error max|safnet - torch| / max|torch| of the logits. Both sides compute in f32 with
// different summation orders; through ~20 layers of sums over up to 4608 terms the rounding
// error stays near 1e-6 of the scale, so 1e-4 separates rounding from any real difference (a
// wrong layer, stride, padding or statistic changes the logits by order 1).
void check_parity(const std::string& arch, int classes, int size, const std::string& device = "cpu") {
  if (!have_torchvision()) SAFNET_SKIP_OR_FAIL("python3-torch/torchvision not installed: PyTorch parity of " << arch << " skipped");
  const std::string dir = temp_dir("parity_" + arch);
  const std::string pth = dir + "/model.pth", weights = dir + "/weights.safetensors", io = dir + "/io.safetensors";
  ASSERT_NO_FATAL_FAILURE(python(SAFNET_SOURCE_DIR "/tests/parity/torch_resnet.py " + arch + " 7 " +
                                 std::to_string(classes) + " " + std::to_string(size) + " " + dir));
  ASSERT_NO_FATAL_FAILURE(python(SAFNET_SOURCE_DIR "/tools/export_torch.py " + pth + " " + weights));
  ModelConfig cfg = default_model_config(arch);
  cfg.height = cfg.width = size;
  const ImportResult r = import_state_dict(weights, cfg, ImportOptions{});
  EXPECT_EQ(r.checkpoint.model.classes, classes);
  EXPECT_TRUE(r.reinitialised.empty());

  const SafetensorsFile ref = read_safetensors(io);
  const Tensor& x = ref.at("x", io);
  const Tensor& want = ref.at("logits", io);
  Backend& backend = backend_for(resolve_device(device, true));
  std::printf("[parity] %s on %s\n", arch.c_str(), backend.describe().c_str());
  const Tensor got = forward(r.checkpoint, x, backend);
  ASSERT_EQ(got.shape(), want.shape());
  double scale = 0, err = 0;
  for (std::int64_t i = 0; i < want.numel(); ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(want.data<float>()[i])));
    err = std::max(err, std::fabs(static_cast<double>(got.data<float>()[i]) - want.data<float>()[i]));
  }
  ASSERT_GT(scale, 0.0);
  EXPECT_LT(err / scale, 1e-4) << arch << ": max abs error " << err << " at logit scale " << scale;
  std::filesystem::remove_all(dir);
}

TEST(TorchvisionParity, ResNet18LogitsMatchPyTorch) { check_parity("resnet18", 10, 64); }

// The CUDA backend: on the GPU where there is one, else the same kernels on the simulator.
TEST(TorchvisionParity, ResNet18LogitsMatchPyTorchOnTheCudaBackend) {
  std::string device = "sim";
  try {
    resolve_device("cuda", true);
    device = "cuda";
  } catch (const Error&) {
  }
  check_parity("resnet18", 10, 64, device);
}

TEST(TorchvisionParity, CifarResNet20FromTorchReferenceImports) { check_parity("resnet20", 10, 32); }

// The export path for torchvision's own architecture, at its full ImageNet size.
TEST(TorchvisionParity, RandomTorchvisionResNet18ImportsByName) {
  if (!have_torchvision()) SAFNET_SKIP_OR_FAIL("python3-torch/torchvision not installed: torchvision export skipped");
  const std::string dir = temp_dir("tv_export");
  const std::string weights = dir + "/r18.safetensors";
  ASSERT_NO_FATAL_FAILURE(python(SAFNET_SOURCE_DIR "/tools/export_torch.py --torchvision resnet18 --random --seed 1 " + weights));
  const ImportResult r = import_state_dict(weights, default_model_config("resnet18"), ImportOptions{});
  EXPECT_EQ(r.checkpoint.model.classes, 1000);
  EXPECT_EQ(r.checkpoint.params.trainable_count(), 11689512);
  EXPECT_EQ(r.ignored.size(), 20u);  // one num_batches_tracked per batch norm
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace safnet
