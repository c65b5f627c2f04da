// Benchmark: single-threaded conv2d_forward (the production kernel) on ResNet-20's CIFAR shapes.
// Usage: bench_conv [REPEATS]         prints min ms per shape
//        bench_conv --serve           reads "SHAPE REPEATS" lines, answers each with the min ms,
//                                     so tools/bench_conv.py can alternate it with PyTorch
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "host/cpu/ops.h"

namespace {

using safnet::cpu::ConvGeom;

// Batch 256, 3x3, pad 1; the stride-2 layers open stages 2 and 3.
const ConvGeom kShapes[] = {
    {256, 3, 32, 32, 16, 3, 3, 1, 1},  {256, 16, 32, 32, 16, 3, 3, 1, 1}, {256, 16, 32, 32, 32, 3, 3, 2, 1},
    {256, 32, 16, 16, 32, 3, 3, 1, 1}, {256, 32, 16, 16, 64, 3, 3, 2, 1}, {256, 64, 8, 8, 64, 3, 3, 1, 1},
};
constexpr int kNumShapes = sizeof(kShapes) / sizeof(kShapes[0]);

struct Buffers {
  std::vector<float> x, w, y;  // (N, C, H, W), (K, C, R, S), (N, K, OH, OW)
};

Buffers make_buffers(const ConvGeom& g) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Buffers b;
  b.x.resize(static_cast<std::size_t>(g.n) * g.c * g.h * g.w);
  b.w.resize(static_cast<std::size_t>(g.k) * g.c * g.r * g.s);
  b.y.resize(static_cast<std::size_t>(g.n) * g.k * g.oh() * g.ow());
  for (float& v : b.x) v = u(rng);
  for (float& v : b.w) v = u(rng);
  return b;
}

double min_ms(const ConvGeom& g, Buffers& b, int repeats) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    safnet::cpu::conv2d_forward(g, b.x.data(), b.w.data(), b.y.data());
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  omp_set_num_threads(1);  // as in a fault campaign: one trial per thread
  std::vector<Buffers> bufs;
  for (const ConvGeom& g : kShapes) bufs.push_back(make_buffers(g));
  if (argc > 1 && std::strcmp(argv[1], "--serve") == 0) {
    int shape, repeats;
    while (std::scanf("%d %d", &shape, &repeats) == 2) {
      if (shape < 0 || shape >= kNumShapes || repeats < 1) {
        std::fprintf(stderr, "bench_conv: bad request %d %d\n", shape, repeats);
        return 1;
      }
      std::printf("%.4f\n", min_ms(kShapes[shape], bufs[shape], repeats));
      std::fflush(stdout);
    }
    return 0;
  }
  const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
  for (int i = 0; i < kNumShapes; ++i) {
    const ConvGeom& g = kShapes[i];
    std::printf("n%d c%d %dx%d k%d s%d: %.3f ms\n", g.n, g.c, g.h, g.w, g.k, g.stride,
                min_ms(g, bufs[i], repeats));
  }
  return 0;
}
