// Which stored bits a campaign hits, checked against offsets and encodings the test computes
// itself: the sampler's sites over the concatenated target words, mapped by hand, must be exactly
// the bits that differ between a trial's stored words and the clean ones; and every target is
// read by the model as the value of its (possibly faulty) stored word.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "app/campaign.h"
#include "host/faults/storage.h"
#include "models/model.h"

namespace safnet {
namespace {

Checkpoint cnn_checkpoint() {
  Checkpoint ck;
  ck.model.arch = "cnn";
  ck.model.saf = parse_saf("tanh");
  ck.params = init_params(ck.model, 21);
  // Batch-norm parameters away from their 1/0 start, so a misread word shows.
  std::uint32_t state = 7;
  for (ParamInfo& p : ck.params.all())
    if (p.layer == LayerKind::batchnorm)
      for (std::int64_t i = 0; i < p.value.numel(); ++i) {
        state = state * 1664525u + 1013904223u;
        const float u = static_cast<float>(state >> 8) / 16777216.0f;
        p.value.data<float>()[i] = p.role == ParamRole::bn_running_var ? 0.5f + u : u - 0.5f;
      }
  return ck;
}

EvalSet small_set() {
  EvalSet set;
  set.images = Tensor({12, 3, 32, 32});
  for (std::int64_t i = 0; i < set.images.numel(); ++i) set.images.data<float>()[i] = static_cast<float>(std::sin(0.11 * i));
  for (int i = 0; i < 12; ++i) set.labels.push_back(i % 10);
  return set;
}

struct Case {
  std::string what;
  FaultTargets targets;
  std::vector<std::string> expect;  // target names, in parameter order
  std::string bits = "all";
  std::uint64_t mask = ~std::uint64_t{0};  // the same positions, by hand
  FaultModel model = FaultModel::flip;
  DType dtype = DType::f32();
  double ber = 2e-3;
};

std::vector<Case> cases() {
  const std::vector<std::string> weights{"conv1.weight", "conv2.weight", "fc.weight"};
  std::vector<Case> c;
  c.push_back({"default targets", {}, weights});
  {
    Case k{"--layers linear", {}, {"fc.weight"}};
    k.targets.layers = {"linear"};
    k.ber = 2e-2;
    c.push_back(k);
  }
  {
    Case k{"--params conv2*", {}, {"conv2.weight"}};
    k.targets.pattern = "conv2*";
    c.push_back(k);
  }
  {
    Case k{"--bits exponent f16", {}, weights, "exponent", 0x7C00};
    k.dtype = DType::f16();
    c.push_back(k);
  }
  {
    Case k{"--bits 0-2,7 fixed2.5", {}, weights, "0-2,7", 0x87};
    k.dtype = DType::parse("fixed2.5");
    c.push_back(k);
  }
  {
    Case k{"--biases bf16", {}, {"conv1.weight", "conv2.weight", "fc.weight", "fc.bias"}};
    k.targets.biases = true;
    k.dtype = DType::bf16();
    k.ber = 1e-2;
    c.push_back(k);
  }
  {
    Case k{"--batchnorm f16",
           {},
           {"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias", "fc.weight"}};
    k.targets.batchnorm = true;
    k.targets.layers.push_back("batchnorm");
    k.dtype = DType::f16();
    k.ber = 1e-2;
    c.push_back(k);
  }
  {
    Case k{"--fault stuck0", {}, weights};
    k.model = FaultModel::stuck0;
    k.ber = 1e-2;
    c.push_back(k);
  }
  {
    Case k{"--fault stuck1 --biases --batchnorm fixed2.5",
           {},
           {"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias", "fc.weight", "fc.bias"}};
    k.targets.biases = k.targets.batchnorm = true;
    k.targets.layers.push_back("batchnorm");
    k.model = FaultModel::stuck1;
    k.dtype = DType::parse("fixed2.5");
    k.ber = 1e-2;
    c.push_back(k);
  }
  return c;
}

std::vector<std::uint8_t> host_bytes(const Tensor& t) {
  const Tensor h = cpu_backend().to_host(t);
  const auto* p = static_cast<const std::uint8_t*>(h.raw());
  return {p, p + h.nbytes()};
}

float value_of(const std::uint8_t* word, DType dt) {
  float v;
  decode_words(word, dt, 1, &v);
  return v;
}

TEST(FaultTargeting, StoredBitsAreTheSamplersSitesAtOffsetsComputedHere) {
  const Checkpoint ck = cnn_checkpoint();
  const EvalSet set = small_set();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.what);
    CampaignConfig cfg;
    cfg.dtypes = {c.dtype};
    cfg.bers = {c.ber};
    cfg.seed = 17;
    cfg.targets = c.targets;
    cfg.bits = c.bits;
    cfg.model = c.model;
    cfg.batch = 5;
    Campaign campaign(ck, "targeting", "cifar10", 0, set, cfg, cpu_backend());

    // The clean words: each expected target encoded, concatenated in parameter order.
    const std::size_t ws = c.dtype.size();
    std::vector<std::uint8_t> clean;
    std::vector<std::int64_t> first;  // per expected target, its first word
    for (const std::string& name : c.expect) {
      const Tensor& v = ck.params.at(name).value;
      first.push_back(static_cast<std::int64_t>(clean.size() / ws));
      const StorageBuffer b = encode_storage(v.data<float>(), v.numel(), c.dtype);
      clean.insert(clean.end(), b.bytes.begin(), b.bytes.end());
    }
    FlipSpec spec;
    spec.words = static_cast<std::int64_t>(clean.size() / ws);
    spec.word_bits = c.dtype.bits();
    spec.bit_mask = c.mask;
    spec.ber = c.ber;
    for (std::int64_t trial : {-1, 0, 3}) {
      SCOPED_TRACE("trial " + std::to_string(trial));
      const std::vector<FlipSite> sites = trial < 0 ? std::vector<FlipSite>{} : sample_flips(17, static_cast<std::uint64_t>(trial), spec);
      if (trial >= 0) ASSERT_FALSE(sites.empty()) << "the BER should flip something here";
      std::vector<std::uint8_t> want = clean;
      for (const FlipSite& s : sites) {
        ASSERT_LT(s.word, spec.words);
        ASSERT_TRUE((c.mask >> s.bit) & 1) << "bit " << s.bit << " outside the requested positions";
        std::uint8_t& byte = want[static_cast<std::size_t>(s.word) * ws + static_cast<std::size_t>(s.bit / 8)];
        const std::uint8_t m = static_cast<std::uint8_t>(1u << (s.bit % 8));
        byte = c.model == FaultModel::flip ? byte ^ m : c.model == FaultModel::stuck0 ? byte & ~m : byte | m;
      }
      const auto stored = campaign.faulty_model(c.dtype, c.ber, trial);
      ASSERT_EQ(host_bytes(stored->words()), want);

      // What the model reads: weights as their stored words, other targets as their values.
      std::set<std::string> targets(c.expect.begin(), c.expect.end());
      for (const ParamInfo& p : stored->params().all()) {
        SCOPED_TRACE(p.name);
        const Tensor v = cpu_backend().to_host(p.value);
        auto at = std::find(c.expect.begin(), c.expect.end(), p.name);
        if (at == c.expect.end()) {
          ASSERT_EQ(v.dtype(), DType::f32());
          EXPECT_EQ(0, std::memcmp(v.raw(), ck.params.at(p.name).value.raw(), v.nbytes()));
          continue;
        }
        const std::uint8_t* words = want.data() + static_cast<std::size_t>(first[static_cast<std::size_t>(at - c.expect.begin())]) * ws;
        if (p.role == ParamRole::weight) {
          ASSERT_EQ(v.dtype(), c.dtype);
          EXPECT_EQ(0, std::memcmp(v.raw(), words, v.nbytes()));
        } else {
          ASSERT_EQ(v.dtype(), DType::f32()) << "a bias or batch-norm target must be bound decoded";
          for (std::int64_t i = 0; i < v.numel(); ++i) {
            const float w = value_of(words + static_cast<std::size_t>(i) * ws, c.dtype), got = v.data<float>()[i];
            if (std::isnan(w)) EXPECT_TRUE(std::isnan(got)) << i;
            else EXPECT_EQ(got, w) << i;
          }
        }
      }
      EXPECT_EQ(campaign.run_trial(c.dtype, c.ber, trial).flips, static_cast<std::int64_t>(sites.size()));
    }
  }
}

// At BER 0 nothing flips, so every trial is the clean model, and biases and batch-norm parameters
// stored in a narrow dtype are read as their rounded values: the metrics equal those of a model
// built here with exactly those values.
TEST(FaultTargeting, NarrowBiasesAndBatchNormAreReadAsTheirValues) {
  const Checkpoint ck = cnn_checkpoint();
  const EvalSet set = small_set();
  for (const char* name : {"f16", "bf16", "fixed2.5"}) {
    SCOPED_TRACE(name);
    const DType dt = DType::parse(name);
    CampaignConfig cfg;
    cfg.dtypes = {dt};
    cfg.bers = {0.0};
    cfg.targets.biases = cfg.targets.batchnorm = true;
    cfg.targets.layers.push_back("batchnorm");
    cfg.batch = 5;
    Campaign campaign(ck, "narrow", "cifar10", 0, set, cfg, cpu_backend());
    const TrialRecord clean = campaign.run_trial(dt, 0.0, -1), trial = campaign.run_trial(dt, 0.0, 0);
    EXPECT_EQ(trial.flips, 0);
    EXPECT_EQ(trial.top1, clean.top1);
    EXPECT_EQ(trial.top5, clean.top5);
    EXPECT_EQ(trial.loss, clean.loss);

    ParamStore by_hand;
    for (const ParamInfo& p : ck.params.all()) {
      const bool target = p.role == ParamRole::weight || p.role == ParamRole::bias || p.role == ParamRole::bn_weight ||
                          p.role == ParamRole::bn_bias;
      if (!target) {
        by_hand.add(p.name, p.value, p.role, p.layer);
        continue;
      }
      const StorageBuffer b = encode_storage(p.value.data<float>(), p.value.numel(), dt);
      Tensor t(p.value.shape(), p.role == ParamRole::weight ? dt : DType::f32());
      if (p.role == ParamRole::weight) std::memcpy(t.raw(), b.bytes.data(), b.bytes.size());
      else decode_words(b.bytes.data(), dt, p.value.numel(), t.data<float>());
      by_hand.add(p.name, t, p.role, p.layer);
    }
    Evaluator ev(ck.model, 5, cpu_backend());
    const Metrics m = ev.run(by_hand, set);
    EXPECT_TRUE(std::isfinite(clean.loss));
    EXPECT_EQ(clean.top1, m.top1);
    EXPECT_EQ(clean.top5, m.top5);
    EXPECT_EQ(clean.loss, m.loss);
  }
}

}  // namespace
}  // namespace safnet
