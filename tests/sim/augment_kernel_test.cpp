// The device augmentation kernel against data/augment.cpp's apply_augment plus the Loader's
// normalisation table, bit for bit, on ragged shapes, crop padding and flips.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "cuda/kernels/augment.h"
#include "data/augment.h"

namespace {

namespace sc = safnet::cuda;

template <typename T>
T* to_device(const std::vector<T>& host) {
  T* p = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p), host.size() * sizeof(T)));
  SAFNET_CUDA_CHECK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

// A normalisation table as the Loader builds it, (C, 256), with a distinct value per byte.
std::vector<float> make_lut(int c, std::mt19937& rng) {
  std::uniform_real_distribution<float> mean(0.2f, 0.8f), std(0.1f, 0.4f);
  std::vector<float> lut(static_cast<std::size_t>(c) * 256);
  for (int ch = 0; ch < c; ++ch) {
    const float m = mean(rng), s = std(rng);
    for (int v = 0; v < 256; ++v) lut[ch * 256 + v] = (static_cast<float>(v) / 255.0f - m) / s;
  }
  return lut;
}

// Runs the kernel and the CPU reference on the same images and draws; returns mismatches.
int compare(int n, int c, int h, int w, const std::vector<safnet::AugmentDraw>& draws,
            std::mt19937& rng) {
  const std::size_t img = static_cast<std::size_t>(c) * h * w;
  std::vector<std::uint8_t> images(n * img);  // (N, C, H, W)
  for (auto& v : images) v = static_cast<std::uint8_t>(1 + rng() % 255);  // 0 only from padding
  const auto lut = make_lut(c, rng);
  std::vector<sc::AugmentDrawDev> dev_draws;
  for (const auto& d : draws) dev_draws.push_back({d.dy, d.dx, d.flip ? 1 : 0});

  std::vector<float> want(n * img);  // (N, C, H, W)
  std::vector<std::uint8_t> tmp(img);
  for (int i = 0; i < n; ++i) {
    safnet::apply_augment(images.data() + i * img, tmp.data(), c, h, w, draws[i]);
    for (std::size_t k = 0; k < img; ++k)
      want[i * img + k] = lut[(k / (static_cast<std::size_t>(h) * w)) * 256 + tmp[k]];
  }

  auto* d_images = to_device(images);
  auto* d_draws = to_device(dev_draws);
  auto* d_lut = to_device(lut);
  float* d_out = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d_out), want.size() * sizeof(float)));
  sc::augment_normalize(d_images, d_draws, n, c, h, w, d_lut, d_out, nullptr);
  std::vector<float> got(want.size());
  SAFNET_CUDA_CHECK(cudaMemcpy(got.data(), d_out, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (void* p : {static_cast<void*>(d_images), static_cast<void*>(d_draws),
                  static_cast<void*>(d_lut), static_cast<void*>(d_out)})
    SAFNET_CUDA_CHECK(cudaFree(p));

  int bad = 0;
  for (std::size_t k = 0; k < want.size(); ++k) {
    if (std::memcmp(&got[k], &want[k], sizeof(float)) == 0) continue;
    if (++bad <= 5)
      ADD_FAILURE() << "shape (" << n << "," << c << "," << h << "," << w << ") element " << k
                    << ": got " << got[k] << " want " << want[k];
  }
  return bad;
}

struct Shape {
  int n, c, h, w;
};

TEST(AugmentKernel, MatchesApplyAugmentAndTheLoaderTableBitForBit) {
  std::mt19937 rng(11);
  const Shape shapes[] = {{1, 1, 1, 1}, {1, 3, 5, 7}, {3, 3, 32, 32}, {5, 2, 3, 9},
                          {2, 1, 17, 13}, {4, 3, 8, 8}, {1, 3, 33, 31}};
  for (const Shape& s : shapes)
    for (int pad : {0, 4})
      for (bool flip : {false, true}) {
        const safnet::AugmentConfig cfg{pad, flip};
        std::vector<safnet::AugmentDraw> draws;
        for (int i = 0; i < s.n; ++i) draws.push_back(safnet::draw_augment(cfg, 42, 3, i));
        EXPECT_EQ(compare(s.n, s.c, s.h, s.w, draws, rng), 0) << "pad " << pad << " flip " << flip;
      }
}

TEST(AugmentKernel, EveryOffsetAndFlipOfASmallImage) {
  std::mt19937 rng(5);
  const int h = 3, w = 4;
  std::vector<safnet::AugmentDraw> draws;
  for (int dy = -4; dy <= 4; ++dy)
    for (int dx = -5; dx <= 5; ++dx)
      for (bool flip : {false, true}) draws.push_back({dy, dx, flip});
  EXPECT_EQ(compare(static_cast<int>(draws.size()), 2, h, w, draws, rng), 0);
}

// Batches gathered from a set held on the device (a resident training set) are the batches of the
// same images gathered on the host, bit for bit, and carry their labels; an image may repeat.
TEST(AugmentKernel, GatherFromADeviceSetEqualsTheHostGatheredBatch) {
  std::mt19937 rng(9);
  const int m = 7, c = 3, h = 5, w = 6;
  const std::size_t img = static_cast<std::size_t>(c) * h * w;
  std::vector<std::uint8_t> set(m * img);
  for (auto& v : set) v = static_cast<std::uint8_t>(rng());
  std::vector<std::int32_t> labels(m);
  for (int i = 0; i < m; ++i) labels[i] = 100 + i;
  const std::vector<std::int32_t> index = {6, 0, 3, 6, 2};
  const int n = static_cast<int>(index.size());
  const auto lut = make_lut(c, rng);
  std::vector<sc::AugmentDrawDev> draws;
  std::vector<std::uint8_t> gathered;
  for (int i = 0; i < n; ++i) {
    const safnet::AugmentDraw d = safnet::draw_augment(safnet::AugmentConfig{2, true}, 7, 1, index[i]);
    draws.push_back({d.dy, d.dx, d.flip ? 1 : 0});
    gathered.insert(gathered.end(), set.begin() + index[i] * img, set.begin() + (index[i] + 1) * img);
  }
  auto* d_set = to_device(set);
  auto* d_gathered = to_device(gathered);
  auto* d_labels = to_device(labels);
  auto* d_index = to_device(index);
  auto* d_draws = to_device(draws);
  auto* d_lut = to_device(lut);
  auto* d_want = to_device(std::vector<float>(n * img));
  auto* d_got = to_device(std::vector<float>(n * img));
  auto* d_got_labels = to_device(std::vector<std::int32_t>(n));
  sc::augment_normalize(d_gathered, d_draws, n, c, h, w, d_lut, d_want, nullptr);
  sc::augment_normalize_gather(d_set, d_index, d_draws, n, c, h, w, d_lut, d_got, d_labels, d_got_labels, nullptr);
  std::vector<float> want(n * img), got(n * img);
  std::vector<std::int32_t> got_labels(n);
  SAFNET_CUDA_CHECK(cudaMemcpy(want.data(), d_want, want.size() * sizeof(float), cudaMemcpyDeviceToHost));
  SAFNET_CUDA_CHECK(cudaMemcpy(got.data(), d_got, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  SAFNET_CUDA_CHECK(cudaMemcpy(got_labels.data(), d_got_labels, n * sizeof(std::int32_t), cudaMemcpyDeviceToHost));
  for (void* p : {static_cast<void*>(d_set), static_cast<void*>(d_gathered), static_cast<void*>(d_labels),
                  static_cast<void*>(d_index), static_cast<void*>(d_draws), static_cast<void*>(d_lut),
                  static_cast<void*>(d_want), static_cast<void*>(d_got), static_cast<void*>(d_got_labels)})
    SAFNET_CUDA_CHECK(cudaFree(p));
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
  for (int i = 0; i < n; ++i) EXPECT_EQ(got_labels[i], 100 + index[i]) << i;
  EXPECT_THROW(sc::augment_normalize_gather(nullptr, nullptr, nullptr, 2, c, h, w, nullptr, nullptr, nullptr, nullptr,
                                            nullptr),
               std::invalid_argument);
}

TEST(AugmentKernel, BadShapesAreRejectedAndAnEmptyBatchLaunchesNothing) {
  const float* lut = nullptr;
  float* out = nullptr;
  EXPECT_THROW(sc::augment_normalize(nullptr, nullptr, -1, 3, 4, 4, lut, out, nullptr),
               std::invalid_argument);
  EXPECT_THROW(sc::augment_normalize(nullptr, nullptr, 2, 0, 4, 4, lut, out, nullptr),
               std::invalid_argument);
  EXPECT_THROW(sc::augment_normalize(nullptr, nullptr, 2, 3, 4, 4, lut, out, nullptr),
               std::invalid_argument);
  EXPECT_NO_THROW(sc::augment_normalize(nullptr, nullptr, 0, 3, 4, 4, lut, out, nullptr));
}

}  // namespace
