// Epilogue fusion: which chains fuse, and that a fused run equals the node-by-node run bit for bit
// on every convolution path of the CPU backend, in every storage dtype, with NaN weights too.
#include <gtest/gtest.h>

#include <omp.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "host/cpu/cpu_features.h"
#include "host/executor.h"
#include "host/faults/storage.h"
#include "host/fusion.h"
#include "host/rng.h"
#include "models/model.h"

namespace safnet {
namespace {

std::vector<std::uint8_t> bytes(const Tensor& t) {
  const auto* p = static_cast<const std::uint8_t*>(t.raw());
  return {p, p + t.nbytes()};
}

// Every parameter and running statistic random (positive variances), so no epilogue is the identity.
void randomize(ParamStore& params, std::uint64_t seed) {
  Rng r(seed);
  for (ParamInfo& p : params.all()) {
    float* v = p.value.data<float>();
    for (std::int64_t i = 0; i < p.value.numel(); ++i) {
      const double z = r.normal();
      v[i] = static_cast<float>(p.role == ParamRole::bn_running_var ? 0.5 + std::fabs(z) : 0.3 * z);
    }
  }
}

struct Case {
  std::string arch;
  int n, hw;
  SafKind saf;
  DType storage;
};

// Logits of `cfg`'s eval graph on random images, fused or node by node.
std::vector<std::uint8_t> logits(const Case& c, bool fuse, bool nan_weight, std::size_t* fused_steps) {
  ModelConfig cfg;
  cfg.arch = c.arch;
  cfg.height = cfg.width = c.hw;
  cfg.saf.kind = c.saf;
  ParamStore params = init_params(cfg, 3);
  randomize(params, 4);
  // 1.2f with exponent bit 30 flipped: a signalling NaN with a payload, as a fault makes; its payload
  // must travel the fused and unfused paths alike, not just the default NaN's.
  if (nan_weight) params.at(c.arch == "resnet20" ? "layer2.0.conv2.weight" : "layer2.0.downsample.0.weight").value.data<float>()[5] =
      std::bit_cast<float>(std::bit_cast<std::uint32_t>(1.2f) ^ (1u << 30));
  ParamStore stored;
  for (const ParamInfo& p : params.all()) {
    if (!p.carries_saf() || c.storage == DType::f32()) {
      stored.add(p.name, p.value, p.role, p.layer);
      continue;
    }
    const StorageBuffer words = encode_storage(p.value.data<float>(), p.value.numel(), c.storage);
    Tensor t(p.value.shape(), c.storage);
    std::memcpy(t.raw(), words.bytes.data(), words.bytes.size());
    stored.add(p.name, std::move(t), p.role, p.layer);
  }
  Graph g;
  const ValueId x = g.input("images", {c.n, 3, c.hw, c.hw});
  const ValueId out = build_forward(cfg, g, x, /*train=*/false);
  Executor ex(g, {out}, cpu_backend(), fuse);
  *fused_steps = ex.fused_steps();
  ex.bind_params(stored);
  Tensor xt({c.n, 3, c.hw, c.hw});
  Rng r(5);
  for (std::int64_t i = 0; i < xt.numel(); ++i) xt.data<float>()[i] = static_cast<float>(r.normal());
  ex.set_input(x, xt);
  ex.run();
  return bytes(ex.get(out));
}

TEST(Fusion, FindsEveryConvBnChainOfTheResNets) {
  for (const auto& [arch, hw, want, with_add] :
       std::vector<std::tuple<std::string, int, std::size_t, int>>{{"resnet20", 8, 19, 9}, {"resnet18", 32, 20, 8}}) {
    ModelConfig cfg;
    cfg.arch = arch;
    cfg.height = cfg.width = hw;
    Graph g;
    const ValueId out = build_forward(cfg, g, g.input("images", {2, 3, hw, hw}), false);
    const std::vector<FusedRun> runs = find_conv_epilogues(g, {out});
    EXPECT_EQ(runs.size(), want) << arch;
    int adds = 0;
    for (const FusedRun& r : runs) {
      EXPECT_EQ(g.nodes()[r.begin].op, Op::conv2d);
      EXPECT_EQ(r.node.out[0], g.nodes()[r.end - 1].out[0]) << r.node.name;
      adds += r.node.in.size() == 7;
    }
    EXPECT_EQ(adds, with_add) << arch;
    // ResNet-18's downsampling blocks: the add reads the shortcut chain as its second operand.
    if (arch == "resnet18") {
      int first = 0;
      for (const FusedRun& r : runs) first += r.node.attrs.residual_first;
      EXPECT_EQ(first, 3);
    }
  }
}

TEST(Fusion, NeverFusesTrainingGraphsOrValuesTheCallerReads) {
  ModelConfig cfg;
  cfg.height = cfg.width = 8;
  Graph train;
  const ValueId logits = build_forward(cfg, train, train.input("images", {2, 3, 8, 8}), true);
  const ValueId labels = train.input("labels", {2}, DType::i32());
  const ValueId loss = train.softmax_ce(logits, labels, 0.0f).first;
  train.backward(loss);
  EXPECT_TRUE(find_conv_epilogues(train, {loss}).empty());

  Graph eval;
  const ValueId out = build_forward(cfg, eval, eval.input("images", {2, 3, 8, 8}), false);
  ASSERT_EQ(eval.nodes()[1].op, Op::batchnorm_eval);
  const std::vector<FusedRun> all = find_conv_epilogues(eval, {out});
  ASSERT_EQ(all.front().begin, 0u);
  EXPECT_EQ(all.front().end, 3u);  // the stem's conv, bn and relu
  // The caller reads the stem's batch norm: the chain ends there, where the value is written.
  const std::vector<FusedRun> to_bn = find_conv_epilogues(eval, {out, eval.nodes()[1].out[0]});
  ASSERT_EQ(to_bn.size(), all.size());
  EXPECT_EQ(to_bn.front().end, 2u);
  EXPECT_FALSE(to_bn.front().node.attrs.relu);
  // The caller reads the stem's convolution: nothing of the stem fuses.
  const std::vector<FusedRun> none = find_conv_epilogues(eval, {out, eval.nodes()[0].out[0]});
  ASSERT_EQ(none.size(), all.size() - 1);
  EXPECT_GT(none.front().begin, 0u);
}

TEST(Fusion, FusedRunEqualsTheNodeByNodeRunBitForBit) {
  omp_set_num_threads(2);
  const std::vector<Case> cases = {
      {"resnet20", 3, 8, SafKind::tanh, DType::f32()},  {"resnet20", 2, 16, SafKind::none, DType::f16()},
      {"resnet20", 5, 8, SafKind::softsign, DType::fixed(2, 5)}, {"resnet20", 1, 12, SafKind::none, DType::bf16()},
      {"resnet18", 1, 32, SafKind::tanh, DType::f32()},
  };
  const bool avx2 = cpu::avx2_kernels_enabled(), avx512 = cpu::avx512_kernels_enabled();
  for (const bool blocked : {true, false}) {
    // Without the blocked kernels every convolution takes the im2col + sgemm paths (bands, and
    // several images per GEMM where an image's output is small).
    cpu::set_avx2_kernels_enabled(blocked && avx2);
    cpu::set_avx512_kernels_enabled(blocked && avx512);
    for (const Case& c : cases)
      for (const bool nan : {false, true}) {
        if (nan && &c != &cases.front() && &c != &cases.back()) continue;  // NaN: one ResNet-20, one ResNet-18
        SCOPED_TRACE(c.arch + " n=" + std::to_string(c.n) + " hw=" + std::to_string(c.hw) + " " + c.storage.name() +
                     (blocked ? " blocked" : " sgemm") + (nan ? " NaN weight" : ""));
        std::size_t fused = 0, plain = 0;
        const auto want = logits(c, false, nan, &plain);
        const auto got = logits(c, true, nan, &fused);
        EXPECT_EQ(plain, 0u);
        EXPECT_GT(fused, 0u);
        EXPECT_EQ(got, want);
      }
  }
  cpu::set_avx2_kernels_enabled(avx2);
  cpu::set_avx512_kernels_enabled(avx512);
}

}  // namespace
}  // namespace safnet
