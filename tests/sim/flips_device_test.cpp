// The device flip sampler (cuda/kernels/flips.cu), on the simulator or a GPU, gives exactly the CPU's
// sample_flips() sites for every seed, trial, BER and storage width, and the device fault
// application changes the same bytes as the CPU's apply_faults().
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/kernels/common.h"
#include "cuda/kernels/flips.h"
#include "tests/sim/device_under_test.h"
#include "host/faults/flips.h"

namespace {

namespace gpu = safnet::cuda;
using safnet::FlipSite;

template <typename T>
T* device_copy(const std::vector<T>& h) {
  void* p = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(&p, (h.empty() ? 1 : h.size()) * sizeof(T)));
  if (!h.empty()) SAFNET_CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return static_cast<T*>(p);
}

template <typename T>
std::vector<T> host_copy(const T* p, std::size_t n) {
  std::vector<T> h(n);
  if (n) SAFNET_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

// Samples on the device: count pass, a copy of the total to size the site buffer, write pass.
std::vector<FlipSite> device_sample(std::uint64_t seed, std::uint64_t trial, const safnet::FlipSpec& spec) {
  const bool sampled = spec.ber > 0 && spec.ber < 1;
  const safnet::FlipThresholds t = sampled ? safnet::flip_thresholds(spec.ber) : safnet::FlipThresholds{};
  const gpu::FlipPlan plan = gpu::make_flip_plan(seed, trial, spec.words, spec.word_bits, spec.bit_mask, spec.ber,
                                                 sampled ? &t : nullptr);
  const std::int64_t chunks = gpu::flip_chunks(plan);
  auto* counts = device_copy(std::vector<std::int64_t>(static_cast<std::size_t>(chunks) + 1, -1));
  gpu::flip_count(plan, counts, nullptr);
  const std::int64_t total = host_copy(counts + chunks, 1)[0];
  auto* sites = device_copy(std::vector<FlipSite>(static_cast<std::size_t>(total)));
  gpu::flip_write(plan, counts, sites, total, nullptr);
  std::vector<FlipSite> out = host_copy(sites, static_cast<std::size_t>(total));
  cudaFree(sites);
  cudaFree(counts);
  return out;
}

struct Width {
  int bits;
  std::uint64_t mask;
};

TEST(DeviceFlips, SitesEqualTheCpuSample) {
  SAFNET_REQUIRE_DEVICE();
  std::printf("[device flips] device: %s\n", safnet::test::device_name().c_str());
  const std::uint64_t saved = safnet::test::schedule_seed();
  // f32, f16/bf16, fixed 8-bit, a 16-bit exponent-only mask and 64-bit words.
  const Width widths[] = {{32, ~0ull}, {16, ~0ull}, {8, ~0ull}, {16, 0x7c00ull}, {64, ~0ull}};
  const double bers[] = {0.0, 1e-7, 1e-4, 3e-3, 0.2, 0.9, 1.0};
  int compared = 0;
  std::int64_t sites_seen = 0;
  for (const Width& w : widths)
    for (const double ber : bers)
      for (const std::uint64_t seed : {1ull, 0xfeedbeefcafeull})
        for (const std::uint64_t trial : {0ull, 7ull}) {
          // Several chunks with a ragged last one at moderate BER; small buffers at the extremes.
          const std::int64_t words = ber >= 0.2 ? 3001 : ber == 0.0 ? 10 : 300001 * 8 / w.bits;
          const safnet::FlipSpec spec{words, w.bits, w.mask, ber};
          safnet::test::set_schedule_seed(seed + trial);
          const auto want = safnet::sample_flips(seed, trial, spec);
          const auto got = device_sample(seed, trial, spec);
          ASSERT_EQ(got.size(), want.size()) << "bits " << w.bits << " ber " << ber << " seed " << seed << " trial " << trial;
          for (std::size_t i = 0; i < want.size(); ++i)
            ASSERT_TRUE(got[i] == want[i]) << "site " << i << ": device (" << got[i].word << ", " << got[i].bit
                                           << "), CPU (" << want[i].word << ", " << want[i].bit << ")";
          ++compared;
          sites_seen += static_cast<std::int64_t>(want.size());
        }
  safnet::test::set_schedule_seed(saved);
  EXPECT_GT(sites_seen, 10000);  // the comparison covered many sites, not only empty samples
  std::printf("[device flips] %d samples, %lld sites identical to the CPU\n", compared,
              static_cast<long long>(sites_seen));
}

TEST(DeviceFlips, CapacityBoundsTheWrite) {
  SAFNET_REQUIRE_DEVICE();
  const safnet::FlipSpec spec{5000, 32, ~0ull, 1e-2};
  const safnet::FlipThresholds t = safnet::flip_thresholds(spec.ber);
  const gpu::FlipPlan plan = gpu::make_flip_plan(3, 4, spec.words, spec.word_bits, spec.bit_mask, spec.ber, &t);
  const std::int64_t chunks = gpu::flip_chunks(plan);
  auto* counts = device_copy(std::vector<std::int64_t>(static_cast<std::size_t>(chunks) + 1));
  gpu::flip_count(plan, counts, nullptr);
  const std::int64_t total = host_copy(counts + chunks, 1)[0];
  const auto want = safnet::sample_flips(3, 4, spec);
  ASSERT_EQ(total, static_cast<std::int64_t>(want.size()));
  const std::int64_t cap = total / 2;  // the buffer ends exactly here: a write past it would fault
  auto* sites = device_copy(std::vector<FlipSite>(static_cast<std::size_t>(cap)));
  gpu::flip_write(plan, counts, sites, cap, nullptr);
  const auto got = host_copy(sites, static_cast<std::size_t>(cap));
  for (std::int64_t i = 0; i < cap; ++i) ASSERT_TRUE(got[static_cast<std::size_t>(i)] == want[static_cast<std::size_t>(i)]);
  cudaFree(sites);
  cudaFree(counts);
}

TEST(DeviceFlips, ApplyMatchesTheCpu) {
  SAFNET_REQUIRE_DEVICE();
  const std::uint64_t saved = safnet::test::schedule_seed();
  for (const int word_bytes : {1, 2, 4}) {
    const std::int64_t words = 4099;
    // High BER so many sites share a byte: the byte-owner logic must merge them.
    const safnet::FlipSpec spec{words, 8 * word_bytes, ~0ull, 0.3};
    const auto sites = safnet::sample_flips(11, static_cast<std::uint64_t>(word_bytes), spec);
    std::mt19937 rng(word_bytes);
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(words * word_bytes));
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    for (const auto model : {safnet::FaultModel::flip, safnet::FaultModel::stuck0, safnet::FaultModel::stuck1}) {
      std::vector<std::uint8_t> want = bytes;
      safnet::apply_faults(want.data(), word_bytes, sites, model);
      auto* dbytes = device_copy(bytes);
      auto* dsites = device_copy(sites);
      auto* dcount = device_copy(std::vector<std::int64_t>{static_cast<std::int64_t>(sites.size())});
      for (const std::uint64_t seed : {1ull, 2ull}) {
        safnet::test::set_schedule_seed(seed);
        SAFNET_CUDA_CHECK(cudaMemcpy(dbytes, bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
        gpu::apply_faults(dbytes, words, word_bytes, dsites, dcount, static_cast<std::int64_t>(sites.size()), model,
                          nullptr);
        EXPECT_EQ(host_copy(dbytes, bytes.size()), want)
            << "word bytes " << word_bytes << " model " << safnet::fault_model_name(model);
      }
      cudaFree(dcount);
      cudaFree(dsites);
      cudaFree(dbytes);
    }
  }
  safnet::test::set_schedule_seed(saved);
}

TEST(DeviceFlips, PlanRejectsWhatTheCpuRejects) {
  EXPECT_THROW(gpu::make_flip_plan(1, 1, -1, 32, ~0ull, 0.1, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::make_flip_plan(1, 1, 10, 65, ~0ull, 0.1, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::make_flip_plan(1, 1, 10, 32, ~0ull, 1.5, nullptr), gpu::KernelArgError);
  EXPECT_THROW(gpu::make_flip_plan(1, 1, 10, 32, ~0ull, 0.1, nullptr), gpu::KernelArgError);  // no thresholds
  EXPECT_THROW(gpu::make_flip_plan(1, 1, std::int64_t{1} << 55, 64, ~0ull, 0.1, nullptr), gpu::KernelArgError);
}

}  // namespace
