// Parity with PyTorch (Debian's python3-torch): conv2d, batch norm, linear and the SAF weight
// path, forward and gradients, on random inputs. Skips, saying so, where torch is missing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "host/executor.h"
#include "host/rng.h"
#include "host/safetensors.h"
#include "host/saf.h"
#include "tests/skip.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

bool have_torch() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

Tensor random_tensor(Shape s, Rng& r, double scale) {
  Tensor t(std::move(s));
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(scale * r.normal());
  return t;
}

// |got - want| <= atol + rtol * |want| elementwise, with the scale of `want` as atol's unit.
void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  double scale = 0;
  for (std::int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want.data<float>()[i])));
  int bad = 0;
  for (std::int64_t i = 0; i < want.numel() && bad < 5; ++i) {
    const double g = got.data<float>()[i], w = want.data<float>()[i];
    // Both sides compute in f32 with different summation orders: a few ulps of the largest
    // magnitude per accumulated term.
    if (std::fabs(g - w) > 1e-5 * scale + 1e-4 * std::fabs(w)) {
      ADD_FAILURE() << what << "[" << i << "]: safnet " << g << " torch " << w;
      ++bad;
    }
  }
}

void check(const std::string& conv_saf, const std::string& lin_saf, int stride, int pad) {
  Rng r(11);
  const int n = 4, c = 3, h = 7, k = 5, classes = 6;
  const float cval = 0.5f, eps = 1e-5f, momentum = 0.1f, smoothing = 0.1f;
  Graph g;
  const ValueId x = g.input("x", {n, c, h, h});
  const ValueId labels = g.input("labels", {n}, DType::i32());
  const ValueId w = g.param("conv.weight", {k, c, 3, 3});
  OpAttrs ca;
  ca.stride = stride;
  ca.pad = pad;
  ca.saf = parse_saf(conv_saf, cval);
  ValueId y = g.conv2d(x, w, ca, "conv");
  const ValueId gamma = g.param("bn.weight", {k}), beta = g.param("bn.bias", {k});
  const ValueId rm = g.state("bn.running_mean", {k}), rv = g.state("bn.running_var", {k});
  OpAttrs ba;
  ba.eps = eps;
  ba.momentum = momentum;
  y = g.flatten(g.relu(g.batchnorm(y, gamma, beta, rm, rv, true, ba, "bn")));
  const std::int64_t features = g.value(y).shape[1];
  const ValueId fw = g.param("fc.weight", {classes, features}), fb = g.param("fc.bias", {classes});
  OpAttrs la;
  la.saf = parse_saf(lin_saf, cval);
  const ValueId logits = g.linear(y, fw, fb, la, "fc");
  const ValueId loss = g.softmax_ce(logits, labels, smoothing).first;
  auto grads = g.backward(loss);

  SafetensorsFile in;
  ParamStore store;
  auto add = [&](const std::string& name, Tensor t) {
    in.tensors.emplace_back(name, t);
    store.add(name, t.clone(), ParamRole::weight, LayerKind::conv);
  };
  Tensor xt = random_tensor({n, c, h, h}, r, 1.0);
  add("conv.weight", random_tensor({k, c, 3, 3}, r, 0.6));
  add("bn.weight", random_tensor({k}, r, 0.3));
  add("bn.bias", random_tensor({k}, r, 0.3));
  add("bn.running_mean", random_tensor({k}, r, 0.1));
  Tensor var({k});
  for (int i = 0; i < k; ++i) var.data<float>()[i] = 1.0f + 0.1f * i;
  add("bn.running_var", var);
  add("fc.weight", random_tensor({classes, features}, r, 0.3));
  add("fc.bias", random_tensor({classes}, r, 0.1));
  Tensor lt({n}, DType::i32()), lf({n});
  for (int i = 0; i < n; ++i) {
    lt.data<std::int32_t>()[i] = (i * 5 + 1) % classes;
    lf.data<float>()[i] = static_cast<float>(lt.data<std::int32_t>()[i]);
  }
  in.tensors.emplace_back("x", xt);
  in.tensors.emplace_back("labels", lf);
  in.metadata = {{"conv_saf", conv_saf}, {"linear_saf", lin_saf}, {"c", "0.5"}, {"stride", std::to_string(stride)},
                 {"pad", std::to_string(pad)}, {"eps", "1e-5"}, {"momentum", "0.1"}, {"smoothing", "0.1"}};
  // Unique names: ctest runs the cases of this file as parallel processes.
  const std::string dir = test::scratch_dir("parity").string();
  const std::string in_path = dir + "/in.safetensors", out_path = dir + "/out.safetensors";
  write_safetensors(in_path, in);
  const std::string cmd = "/usr/bin/python3 " SAFNET_SOURCE_DIR "/tests/parity/torch_layers.py " + in_path + " " + out_path;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const SafetensorsFile ref = read_safetensors(out_path);

  std::vector<ValueId> keep{loss, logits};
  for (auto [p, gv] : grads) keep.push_back(gv);
  Executor ex(g, keep);
  ex.bind_params(store);
  ex.set_input(x, xt);
  ex.set_input(labels, lt);
  ex.run();
  expect_close(ex.get(loss), ref.at("loss", out_path), "loss");
  expect_close(ex.get(logits), ref.at("logits", out_path), "logits");
  for (auto [p, gv] : grads) {
    const std::string name = g.value(p).name;
    expect_close(ex.get(gv), ref.at("grad." + name, out_path), "grad of " + name + " (" + conv_saf + "/" + lin_saf + ")");
  }
  expect_close(store.at("bn.running_mean").value, ref.at("bn.running_mean", out_path), "running_mean");
  expect_close(store.at("bn.running_var").value, ref.at("bn.running_var", out_path), "running_var");
}

class TorchParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_torch()) SAFNET_SKIP_OR_FAIL("python3-torch is not installed: PyTorch parity not checked");
  }
};

TEST_F(TorchParity, PlainLayers) { check("none", "none", 1, 1); }
TEST_F(TorchParity, TanhConvSoftsignLinearStride2) { check("tanh", "softsign", 2, 1); }
TEST_F(TorchParity, TanhCAndArctan) { check("tanh_c", "arctan", 1, 0); }
TEST_F(TorchParity, Arctan2piAndTanh) { check("arctan2pi", "tanh", 2, 0); }

}  // namespace
}  // namespace safnet
