// The evaluation split on the device: uploaded once and read in place; in chunks of whole batches,
// with a notice, when device memory is short; the same images and labels either way.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "app/devices.h"
#include "app/evaluate.h"
#include "app/resident_set.h"
#include "cuda/sim/counters.h"
#include "cuda/sim/memory.h"
#include "models/model.h"

namespace safnet {
namespace {

constexpr std::int64_t kImages = 64;
constexpr int kBatch = 8;

EvalSet numbered_set() {
  EvalSet s;
  s.images = Tensor({kImages, 3, 8, 8});
  for (std::int64_t i = 0; i < s.images.numel(); ++i) s.images.data<float>()[i] = static_cast<float>(i);
  for (std::int64_t i = 0; i < kImages; ++i) s.labels.push_back(static_cast<std::int32_t>(1000 + i));
  return s;
}

// Reads every batch back and checks it against the host split; returns the bytes sent up.
std::uint64_t check_pass(Backend& b, ResidentSet& set, const EvalSet& data) {
  const auto before = sim::counters().h2d_bytes;
  for (std::int64_t start = 0; start < kImages; start += kBatch) {
    auto [images, labels] = set.batch(start, kBatch);
    const Tensor hi = b.to_host(images), hl = b.to_host(labels);
    EXPECT_EQ(std::memcmp(hi.raw(), data.images.data<float>() + start * 192, hi.nbytes()), 0) << "batch at " << start;
    EXPECT_EQ(std::memcmp(hl.raw(), data.labels.data() + start, hl.nbytes()), 0) << "batch at " << start;
  }
  return sim::counters().h2d_bytes - before;
}

TEST(ResidentSet, UploadsTheSplitOnceAndServesBatchesInPlace) {
  Backend& b = backend_for(Device::parse("sim"));
  const EvalSet data = numbered_set();
  ResidentSet set(b, data, kBatch);
  EXPECT_EQ(set.chunk_images(), kImages);
  const std::uint64_t split = static_cast<std::uint64_t>(data.images.nbytes() + kImages * 4);
  EXPECT_EQ(check_pass(b, set, data), split);
  EXPECT_EQ(check_pass(b, set, data), 0u) << "a second pass must send nothing";
  EXPECT_TRUE(set.holds(data));
  const EvalSet other = numbered_set();
  EXPECT_FALSE(set.holds(other));
}

// Makes the caching allocator free the blocks it keeps (an allocation it cannot serve empties its
// cache before giving up), so that device_bytes_in_use() counts live tensors only.
void empty_allocator_cache(Backend& b) {
  sim::set_device_memory_limit(1);
  EXPECT_THROW(b.zeros({7 << 20}, DType::u8()), std::exception);
  sim::set_device_memory_limit(0);
}

TEST(ResidentSet, StreamsChunksOfWholeBatchesWhenDeviceMemoryIsShort) {
  Backend& b = backend_for(Device::parse("sim"));
  const EvalSet data = numbered_set();  // 48 KiB of images
  empty_allocator_cache(b);
  // Room for 48 KiB but not for twice that: the split may take half of what is free.
  sim::set_device_memory_limit(sim::device_bytes_in_use() + 64 * 1024);
  testing::internal::CaptureStderr();
  std::int64_t chunk = 0;
  std::uint64_t first = 0, second = 0;
  {
    ResidentSet set(b, data, kBatch);
    chunk = set.chunk_images();
    first = check_pass(b, set, data);
    second = check_pass(b, set, data);
  }
  const std::string notice = testing::internal::GetCapturedStderr();
  sim::set_device_memory_limit(0);
  EXPECT_EQ(chunk, 32);
  EXPECT_NE(notice.find("do not fit in free device memory"), std::string::npos) << notice;
  const std::uint64_t split = static_cast<std::uint64_t>(data.images.nbytes() + kImages * 4);
  EXPECT_EQ(first, split);
  EXPECT_EQ(second, split) << "each pass streams the chunks again";
}

// A campaign's or a training run's --quiet reaches the split its evaluator streams.
TEST(ResidentSet, AQuietEvaluatorStreamsItsSplitWithoutANotice) {
  Backend& b = backend_for(Device::parse("sim"));
  const EvalSet data = numbered_set();
  EvalSet one_batch;
  one_batch.images = Tensor({kBatch, 3, 8, 8});
  one_batch.labels.assign(kBatch, 0);
  ModelConfig cfg = default_model_config("mlp");
  cfg.height = cfg.width = 8;
  for (const bool quiet : {false, true}) {
    Evaluator ev(cfg, kBatch, b, NanLogits::as_torch, quiet);
    ASSERT_TRUE(ev.prepare(one_batch));  // builds the plan for batches of kBatch while memory is plenty
    empty_allocator_cache(b);
    sim::set_device_memory_limit(sim::device_bytes_in_use() + 64 * 1024);
    testing::internal::CaptureStderr();
    const bool whole = ev.prepare(data);
    const std::string notice = testing::internal::GetCapturedStderr();
    sim::set_device_memory_limit(0);
    EXPECT_FALSE(whole) << "the split must be streamed for the notice to be due";
    EXPECT_EQ(notice.find("do not fit in free device memory") != std::string::npos, !quiet)
        << "quiet " << quiet << ": " << notice;
  }
}

TEST(ResidentSet, OnTheCpuTheSplitsOwnStorageServes) {
  Backend& b = cpu_backend();
  const EvalSet data = numbered_set();
  ResidentSet set(b, data, kBatch);
  auto [images, labels] = set.batch(16, kBatch);
  EXPECT_EQ(images.raw(), static_cast<const void*>(data.images.data<float>() + 16 * 192));
  EXPECT_EQ(labels.data<std::int32_t>()[0], 1016);
}

}  // namespace
}  // namespace safnet
