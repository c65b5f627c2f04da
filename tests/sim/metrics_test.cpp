// Backend::accumulate_metrics on the device (the simulator and, where there is one, the GPU)
// against the CPU backend, whose counts come from cpu::topk_correct: random rows with ties, NaN
// and infinities sprinkled in, rows of NaNs and rows of -inf, under both NaN rules, two batches
// added onto sums that do not start at zero, and on the simulator under two thread schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "app/devices.h"
#include "cuda/kernels/common.h"
#include "cuda/kernels/softmax_ce.h"
#include "host/backend.h"
#include "host/check.h"
#include "host/cpu/ops.h"
#include "tests/sim/device_under_test.h"

namespace safnet {

void PrintTo(const Device& d, std::ostream* os);

namespace {

struct Batch {
  Tensor logits, labels, loss;
};

// n rows of k logits rounded to quarters (ties), each logit NaN, +inf or -inf with probability
// `odd`, and every 11th row all NaN, every 13th all -inf.
Batch random_batch(int n, int k, double odd, std::uint64_t seed) {
  Batch b{Tensor({n, k}), Tensor({n}, DType::i32()), Tensor({1})};
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  float* z = b.logits.data<float>();
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) {
      float v = std::round(d(g) * 4.0f) / 4.0f;
      const double r = u(g);
      if (r < odd) v = r < odd / 2 ? nan : (r < odd * 3 / 4 ? inf : -inf);
      if (i % 11 == 5) v = nan;
      if (i % 13 == 7) v = -inf;
      z[static_cast<long>(i) * k + j] = v;
    }
  for (int i = 0; i < n; ++i) b.labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(g() % k);
  b.loss.data<float>()[0] = 0.5f + static_cast<float>(u(g));
  return b;
}

MetricSums read_sums(Backend& be, const Tensor& sums) {
  MetricSums m;
  const Tensor h = be.to_host(sums);
  std::memcpy(&m, h.raw(), sizeof m);
  return m;
}

// Sums that start away from zero, so adding (not overwriting) is what is checked.
Tensor start_sums(Backend& be) {
  MetricSums m;
  m.top1 = 3;
  m.top5 = 4;
  m.nonfinite_rows = 5;
  m.loss_sum = 0.25;
  Tensor h({static_cast<std::int64_t>(sizeof m)}, DType::u8());
  std::memcpy(h.raw(), &m, sizeof m);
  Tensor s = be.zeros({static_cast<std::int64_t>(sizeof m)}, DType::u8());
  be.copy(h, s);
  return s;
}

MetricSums run(Backend& be, const std::vector<Batch>& batches, NanLogits rule) {
  Tensor sums = start_sums(be);
  for (const Batch& b : batches)
    be.accumulate_metrics(be.to_device(b.logits), be.to_device(b.labels), be.to_device(b.loss), rule, sums);
  be.synchronize();
  return read_sums(be, sums);
}

std::vector<Device> devices_under_test() {
  std::vector<Device> d{Device{DeviceKind::sim, 0}};
  try {
    d.push_back(resolve_device("cuda", true));
  } catch (const Error&) {
    std::printf("[metrics] no CUDA GPU: the metric kernel runs on the simulator only\n");
  }
  return d;
}

class DeviceMetrics : public ::testing::TestWithParam<Device> {};

TEST_P(DeviceMetrics, EqualTheCpuUnderBothRules) {
  Backend& dev = backend_for(GetParam());
  struct Shape2 {
    int n, k;
  };
  for (const Shape2 s : {Shape2{1, 1}, Shape2{7, 10}, Shape2{300, 13}, Shape2{3, 1000}, Shape2{600, 5}}) {
    std::vector<Batch> batches{random_batch(s.n, s.k, 0.08, 100 + s.k), random_batch(s.n, s.k, 0.3, 200 + s.k)};
    MetricSums cpu_rule[2];
    for (const NanLogits rule : {NanLogits::as_torch, NanLogits::wrong}) {
      SCOPED_TRACE("n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
                   (rule == NanLogits::wrong ? " wrong" : " as_torch"));
      const MetricSums want = run(cpu_backend(), batches, rule);
      cpu_rule[rule == NanLogits::wrong] = want;
      test::set_schedule_seed(1);
      const MetricSums got = run(dev, batches, rule);
      test::set_schedule_seed(0x9e3779b97f4a7c15ull);
      const MetricSums again = run(dev, batches, rule);
      for (const MetricSums& m : {got, again}) {
        EXPECT_EQ(m.top1, want.top1);
        EXPECT_EQ(m.top5, want.top5);
        EXPECT_EQ(m.nonfinite_rows, want.nonfinite_rows);
        EXPECT_EQ(m.loss_sum, want.loss_sum);  // one double product and sum per batch, both sides
      }
      // Row 5 is all NaN from 7 rows on: the inputs hold what the test is about.
      if (s.n >= 7) EXPECT_GE(want.nonfinite_rows, 5 + 2);
    }
    // Dozens of all-NaN rows: some have their label among classes 0-4, which only as_torch counts.
    if (s.n >= 300) EXPECT_GT(cpu_rule[0].top5, cpu_rule[1].top5);
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, DeviceMetrics, ::testing::ValuesIn(devices_under_test()),
                         [](const auto& info) { return info.param.kind == DeviceKind::sim ? std::string("sim") : std::string("cuda"); });

// The CPU backend's sums are topk_correct's counts plus the loss times the rows.
TEST(CpuMetrics, AddTopkCountsAndLoss) {
  const Batch b = random_batch(50, 7, 0.2, 7);
  std::int64_t t1 = 0, t5 = 0, nf = 0;
  cpu::topk_correct(50, 7, b.logits.data<float>(), b.labels.data<std::int32_t>(), &t1, &t5, NanLogits::as_torch, &nf);
  const MetricSums m = run(cpu_backend(), {b}, NanLogits::as_torch);
  EXPECT_EQ(m.top1, 3 + t1);
  EXPECT_EQ(m.top5, 4 + t5);
  EXPECT_EQ(m.nonfinite_rows, 5 + nf);
  EXPECT_EQ(m.loss_sum, 0.25 + static_cast<double>(b.loss.data<float>()[0]) * 50);
  Tensor small({8}, DType::u8());
  EXPECT_THROW(cpu_backend().accumulate_metrics(b.logits, b.labels, b.loss, NanLogits::as_torch, small), Error);
  Tensor labels({49}, DType::i32());
  Tensor sums({static_cast<std::int64_t>(sizeof(MetricSums))}, DType::u8());
  EXPECT_THROW(cpu_backend().accumulate_metrics(b.logits, labels, b.loss, NanLogits::as_torch, sums), Error);
}

TEST(DeviceMetricsKernel, RejectsBadShapes) {
  EXPECT_THROW(cuda::accumulate_metrics(-1, 3, nullptr, nullptr, nullptr, false, nullptr, nullptr, nullptr),
               cuda::KernelArgError);
  EXPECT_THROW(cuda::accumulate_metrics(2, 0, nullptr, nullptr, nullptr, true, nullptr, nullptr, nullptr),
               cuda::KernelArgError);
}

}  // namespace
}  // namespace safnet
