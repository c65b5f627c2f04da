// The CUDA backend against the CPU backend, on the simulator and, where there is one, on the GPU:
// whole models, forward and a training step, CUDA-graph replay in the executor, device fault
// injection, and the guard against host reads of device tensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "host/check.h"
#include "host/executor.h"
#include "host/optim.h"
#include "models/model.h"
#include "app/devices.h"
#include "app/stored_model.h"
#include "tests/sim/tc_bound.h"

namespace safnet {
namespace {

}  // namespace

void PrintTo(const Device& d, std::ostream* os) { *os << d.str(); }

namespace {

std::vector<Device> devices_under_test() {
  std::vector<Device> d{Device{DeviceKind::sim, 0}};
  try {
    d.push_back(resolve_device("cuda", true));
  } catch (const Error&) {
    std::printf("[backend] no CUDA GPU: the backend tests run on the simulator only\n");
  }
  return d;
}

// The backend of the running test.
Backend* g_device = nullptr;
Backend& dev() { return *g_device; }

class DeviceBackend : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override {
    g_device = &backend_for(GetParam());
    std::printf("[backend] device: %s (%s)\n", GetParam().str().c_str(), g_device->describe().c_str());
  }
};


Tensor random_tensor(Shape s, std::uint64_t seed, float scale = 1.0f) {
  Tensor t(std::move(s));
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(g);
  return t;
}

// Float32 sums in a different order differ by a few ulps of the largest partial sums; 1e-4 of
// the tensor's largest magnitude bounds that with room for the depth of a ResNet.
void expect_close(const Tensor& cpu, const Tensor& on_device, const std::string& what, double rel = 1e-4) {
  const Tensor d = dev().to_host(on_device);
  ASSERT_EQ(cpu.numel(), d.numel()) << what;
  double scale = 0;
  for (std::int64_t i = 0; i < cpu.numel(); ++i) scale = std::max(scale, std::fabs(double(cpu.data<float>()[i])));
  const double tol = rel * std::max(scale, 1e-3);
  int bad = 0;
  for (std::int64_t i = 0; i < cpu.numel() && bad < 5; ++i) {
    const double a = cpu.data<float>()[i], b = d.data<float>()[i];
    if (!(std::fabs(a - b) <= tol)) {
      ADD_FAILURE() << what << "[" << i << "]: cpu " << a << " device " << b << " (tolerance " << tol << ")";
      ++bad;
    }
  }
}

struct Step {
  Graph g;
  ValueId x = -1, y = -1, logits = -1, loss = -1;
  std::vector<std::pair<std::string, ValueId>> grads;
};

void build_step(const ModelConfig& cfg, int n, bool train, Step& s) {
  s.x = s.g.input("images", {n, cfg.in_channels, cfg.height, cfg.width});
  s.y = s.g.input("labels", {n}, DType::i32());
  s.logits = build_forward(cfg, s.g, s.x, train);
  s.loss = s.g.softmax_ce(s.logits, s.y, 0.0f).first;
  if (train)
    for (auto [p, gv] : s.g.backward(s.loss)) s.grads.emplace_back(s.g.value(p).name, gv);
}

std::vector<ValueId> outputs(const Step& s) {
  std::vector<ValueId> o{s.logits, s.loss};
  for (const auto& [name, v] : s.grads) o.push_back(v);
  return o;
}

TEST_P(DeviceBackend, ResNet20ForwardAndTrainingStepMatchTheCpu) {
  ModelConfig cfg;
  cfg.arch = "resnet20";
  cfg.saf.kind = SafKind::tanh;
  const int n = 2;
  Step s;
  build_step(cfg, n, true, s);
  ParamStore cpu_params = init_params(cfg, 7);
  ParamStore sim_params = params_on(dev(), cpu_params.clone());
  const Tensor x = random_tensor({n, 3, 32, 32}, 1);
  Tensor y({n}, DType::i32());
  y.data<std::int32_t>()[0] = 3;
  y.data<std::int32_t>()[1] = 8;

  Executor ec(s.g, outputs(s));
  ec.bind_params(cpu_params);
  ec.set_input(s.x, x);
  ec.set_input(s.y, y);
  ec.run();
  Executor es(s.g, outputs(s), dev());
  es.bind_params(sim_params);
  es.set_input(s.x, dev().to_device(x));
  es.set_input(s.y, dev().to_device(y));
  es.run();

  expect_close(ec.get(s.logits), es.get(s.logits), "logits");
  expect_close(ec.get(s.loss), es.get(s.loss), "loss");
  for (const auto& [name, v] : s.grads) expect_close(ec.get(v), es.get(v), "d loss / d " + name, 1e-3);
  // Batch statistics updated the running statistics the same way.
  expect_close(cpu_params.at("bn1.running_var").value, sim_params.at("bn1.running_var").value, "bn1.running_var");

  // One SGD step on each backend.
  OptimConfig oc;
  oc.weight_decay = 1e-3f;
  Optimizer oc_cpu(oc), oc_sim(oc);
  std::map<std::string, const Tensor*> gc, gs;
  for (const auto& [name, v] : s.grads) {
    gc[name] = &ec.get(v);
    gs[name] = &es.get(v);
  }
  oc_cpu.step(cpu_params, gc, 0.1f);
  oc_sim.step(sim_params, gs, 0.1f, dev());
  for (const ParamInfo& p : cpu_params.all()) expect_close(p.value, sim_params.at(p.name).value, "after step: " + p.name);
}

TEST_P(DeviceBackend, StoredWeightsEvaluateLikeTheCpu) {
  ModelConfig cfg;
  cfg.arch = "cnn";
  cfg.in_channels = 1;
  cfg.height = cfg.width = 28;
  cfg.saf.kind = SafKind::softsign;
  Step s;
  build_step(cfg, 3, false, s);
  const ParamStore params = init_params(cfg, 11);
  const Tensor x = random_tensor({3, 1, 28, 28}, 2);
  Tensor y({3}, DType::i32());
  for (const char* dt : {"f32", "f16", "bf16", "fixed2.5"}) {
    ParamStore stored = store_params(params, DType::parse(dt), cpu_backend());
    ParamStore on_sim = store_params(params, DType::parse(dt), dev());
    Executor ec(s.g, {s.logits}), es(s.g, {s.logits}, dev());
    ec.bind_params(stored);
    es.bind_params(on_sim);
    ec.set_input(s.x, x);
    ec.set_input(s.y, y);
    es.set_input(s.x, dev().to_device(x));
    es.set_input(s.y, dev().to_device(y));
    ec.run();
    es.run();
    expect_close(ec.get(s.logits), es.get(s.logits), std::string("logits, weights in ") + dt);
  }
}

// Evaluation graphs run their conv -> bn [-> add] [-> relu] chains fused on the device
// (conv2d_forward_fused): equal to the CPU's separate ops within the float tolerance, in every
// epilogue form (ResNet-18's downsampling blocks add the residual as the first operand), and equal
// to the device's own unfused run within the same tolerance.
TEST_P(DeviceBackend, FusedEpiloguesEvaluateLikeTheCpu) {
  for (const auto& [arch, hw] : std::vector<std::pair<std::string, int>>{{"resnet20", 12}, {"resnet18", 32}}) {
    ModelConfig cfg;
    cfg.arch = arch;
    cfg.height = cfg.width = hw;
    cfg.saf.kind = SafKind::tanh;
    Step s;
    build_step(cfg, 2, false, s);
    ParamStore params = init_params(cfg, 13);
    std::mt19937_64 r(14);
    std::normal_distribution<float> z(0.0f, 0.3f);
    for (ParamInfo& p : params.all())  // no epilogue the identity: random statistics, positive variances
      for (std::int64_t i = 0; i < p.value.numel(); ++i) {
        const float v = z(r);
        p.value.data<float>()[i] = p.role == ParamRole::bn_running_var ? 0.5f + std::fabs(v) : v;
      }
    ParamStore on_dev = params_on(dev(), params.clone());
    const Tensor x = random_tensor({2, 3, hw, hw}, 3);
    Executor ec(s.g, {s.logits}, cpu_backend(), /*fuse=*/false);
    Executor fused(s.g, {s.logits}, dev()), plain(s.g, {s.logits}, dev(), /*fuse=*/false);
    EXPECT_GE(fused.fused_steps(), 19u) << arch;
    Tensor y({2}, DType::i32());
    y.data<std::int32_t>()[0] = 1;
    y.data<std::int32_t>()[1] = 7;
    ec.bind_params(params);
    ec.set_input(s.x, x);
    ec.set_input(s.y, y);
    ec.run();
    for (Executor* e : {&fused, &plain}) {
      e->bind_params(on_dev);
      e->set_input(s.x, dev().to_device(x));
      e->set_input(s.y, dev().to_device(y));
      e->run();
      expect_close(ec.get(s.logits), e->get(s.logits), arch + (e == &fused ? " fused" : " unfused") + " logits");
    }
  }
}

// Each tensor-core math mode through a whole ResNet-20 (fused conv epilogues and the linear head)
// and an MLP, against the CPU's fp32. The fp32 tolerance of expect_close, 1e-4, scaled by how much
// larger the mode's bound on one layer's dot products is than two f32 sums' (tc_rel_bound against
// 2 gamma_n, at ResNet-20's deepest layer, 64 x 3 x 3 = 576 terms); and off the device's own fp32
// bits, so the mode did take effect. The CPU refuses the modes.
// Forward and the training step's gradients in every math mode: logits and gradients within the
// fp32 tolerances scaled by the mode's rounding bound over fp32's, at the models' largest depth.
// Gradients that cancel are checked per kernel only (conformance_test.cpp, against sum |a| |b|):
// BF16's 2^-8 operand rounding, and ResNet-20's batch norm over 2 x 3 x 3 values in its last stage,
// take them far above any bound scaled from their maximum.
TEST_P(DeviceBackend, MathModesTrainLikeTheCpuWithinTheirRounding) {
  struct ModeGuard {
    ~ModeGuard() { dev().set_math_mode(MathMode::fp32); }
  } guard;
  constexpr long kDepth = 576;
  const double f32_bound = 2 * kDepth * 0x1p-24 / (1 - kDepth * 0x1p-24);
  struct Model {
    std::string arch;
    int hw;
    bool grads;
  };
  for (const auto& [arch, hw, grads] : {Model{"resnet20", 12, false}, Model{"cnn", 12, true}, Model{"mlp", 28, true}}) {
    ModelConfig cfg;
    cfg.arch = arch;
    cfg.height = cfg.width = hw;
    if (arch != "resnet20") cfg.in_channels = 1;
    cfg.saf.kind = SafKind::tanh;
    Step s;
    build_step(cfg, 2, grads, s);
    ParamStore params = init_params(cfg, 13);
    const Tensor x = random_tensor({2, cfg.in_channels, hw, hw}, 3);
    Tensor y({2}, DType::i32());
    y.data<std::int32_t>()[0] = 1;
    y.data<std::int32_t>()[1] = 7;
    ParamStore on_cpu = params.clone();  // the step updates batch-norm statistics
    Executor ec(s.g, outputs(s), cpu_backend(), /*fuse=*/false);
    ec.bind_params(on_cpu);
    ec.set_input(s.x, x);
    ec.set_input(s.y, y);
    ec.run();
    Tensor fp32_logits;
    for (const MathMode mode : {MathMode::fp32, MathMode::tf32x3, MathMode::tf32, MathMode::bf16}) {
      dev().set_math_mode(mode);
      ASSERT_EQ(dev().math_mode(), mode);
      ParamStore on_dev = params_on(dev(), params.clone());
      Executor e(s.g, outputs(s), dev());
      e.bind_params(on_dev);
      e.set_input(s.x, dev().to_device(x));
      e.set_input(s.y, dev().to_device(y));
      e.run();
      const double scale = mode == MathMode::fp32 ? 1.0 : test::tc_rel_bound(mode, kDepth) / f32_bound;
      const std::string what = arch + " " + math_mode_name(mode);
      expect_close(ec.get(s.logits), e.get(s.logits), what + " logits", 1e-4 * scale);
      if (grads && mode != MathMode::bf16)
        for (const auto& [name, v] : s.grads) expect_close(ec.get(v), e.get(v), what + " d loss / d " + name, 1e-3 * scale);
      // The mode took effect: its roundings move the logits off the fp32 kernels' bits.
      const Tensor got = dev().to_host(e.get(s.logits));
      if (mode == MathMode::fp32)
        fp32_logits = got;
      else
        EXPECT_NE(std::memcmp(got.data<float>(), fp32_logits.data<float>(), got.nbytes()), 0) << what;
    }
  }
  try {
    cpu_backend().set_math_mode(MathMode::bf16);
    ADD_FAILURE() << "the CPU took --math bf16";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--math bf16 runs on tensor cores"), std::string::npos) << e.what();
  }
  cpu_backend().set_math_mode(MathMode::fp32);
}

TEST_P(DeviceBackend, GraphReplayFollowsInputsAndRebinding) {
  ModelConfig cfg;
  cfg.arch = "mlp";
  cfg.in_channels = 1;
  cfg.height = cfg.width = 8;
  Step s;
  build_step(cfg, 4, false, s);
  ParamStore a = init_params(cfg, 1), b = init_params(cfg, 2);
  ParamStore a_sim = params_on(dev(), a), b_sim = params_on(dev(), b);
  Executor replayed(s.g, {s.logits}, dev());
  replayed.set_graph_replay(true);
  Tensor x_dev = dev().zeros({4, 1, 8, 8}, DType::f32());
  replayed.set_input(s.x, x_dev);
  replayed.set_input(s.y, dev().zeros({4}, DType::i32()));
  for (int run = 0; run < 5; ++run) {
    ParamStore& params_cpu = run < 3 ? a : b;  // the rebinding at run 3 must record afresh
    replayed.bind_params(run < 3 ? a_sim : b_sim);
    const Tensor x = random_tensor({4, 1, 8, 8}, 100 + run);
    dev().copy(x, x_dev);
    replayed.run();
    EXPECT_EQ(replayed.replaying(), run >= 1) << "run " << run;
    Executor fresh(s.g, {s.logits});
    fresh.bind_params(params_cpu);
    fresh.set_input(s.x, x);
    fresh.set_input(s.y, Tensor({4}, DType::i32()));
    fresh.run();
    expect_close(fresh.get(s.logits), replayed.get(s.logits), "run " + std::to_string(run));
  }
}

TEST_P(DeviceBackend, HostCodeCannotReadADeviceTensor) {
  Tensor t = dev().zeros({4}, DType::f32());
  EXPECT_EQ(t.device(), GetParam());
  try {
    (void)t.data<float>();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lives on " + GetParam().str()), std::string::npos) << e.what();
  }
  EXPECT_EQ(dev().to_host(t).data<float>()[3], 0.0f);
}

// 5000 16-bit words of a fixed pattern, and a BER that flips a few hundred of their bits.
constexpr std::int64_t kFaultWords = 5000;
Tensor patterned_words() {
  Tensor host({kFaultWords * 2}, DType::u8());
  for (std::int64_t i = 0; i < host.numel(); ++i) host.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 37);
  return host;
}
FlipSpec sparse_spec() {
  FlipSpec spec;
  spec.words = kFaultWords;
  spec.word_bits = 16;
  spec.ber = 3e-3;
  return spec;
}

TEST_P(DeviceBackend, FaultInjectionOnTheDeviceFlipsTheHostSampledBits) {
  const Tensor host = patterned_words();
  Tensor stored = dev().to_device(host);
  const FlipSpec spec = sparse_spec();
  for (std::uint64_t trial : {0u, 5u}) {
    Tensor h = host.clone();
    dev().copy(host, stored);
    const std::vector<FlipSite> on_cpu = cpu_backend().inject_faults(h, 42, trial, spec, FaultModel::flip);
    const std::vector<FlipSite> on_sim = dev().inject_faults(stored, 42, trial, spec, FaultModel::flip);
    EXPECT_GT(on_cpu.size(), 100u);
    EXPECT_EQ(on_cpu, on_sim);
    const Tensor back = dev().to_host(stored);
    EXPECT_EQ(0, std::memcmp(back.raw(), h.raw(), h.nbytes())) << "trial " << trial;
  }
}

// The trusted path: the device's own sample, sized by the host's count, applied with nothing coming
// back, leaves the words the host's sample gives (a wrong seed or trial would not).
TEST_P(DeviceBackend, FaultInjectionWithoutReadbackLeavesTheHostSampledWords) {
  const Tensor host = patterned_words();
  Tensor stored = dev().to_device(host);
  const FlipSpec spec = sparse_spec();
  for (const FaultModel model : {FaultModel::flip, FaultModel::stuck1}) {
    for (std::uint64_t trial : {0u, 5u}) {
      Tensor h = host.clone();
      dev().copy(host, stored);
      const std::vector<FlipSite> on_cpu = cpu_backend().inject_faults(h, 42, trial, spec, model);
      ASSERT_GT(on_cpu.size(), 100u);
      dev().inject_sampled_faults(stored, 42, trial, spec, model, static_cast<std::int64_t>(on_cpu.size()));
      const Tensor back = dev().to_host(stored);
      EXPECT_EQ(0, std::memcmp(back.raw(), h.raw(), h.nbytes())) << "trial " << trial;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, DeviceBackend, ::testing::ValuesIn(devices_under_test()),
                         [](const ::testing::TestParamInfo<Device>& i) {
                           return i.param.kind == DeviceKind::sim ? std::string("sim") : "cuda" + std::to_string(i.param.index);
                         });

}  // namespace
}  // namespace safnet
