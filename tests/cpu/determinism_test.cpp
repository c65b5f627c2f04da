// The batch reductions give bit-identical results whatever the OpenMP thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <functional>

#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"

namespace safnet::cpu {
namespace {

// Runs `op` with 1 thread and with 3, and expects every output byte to match.
void expect_thread_invariant(const std::function<std::vector<float>()>& op) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> one = op();
  omp_set_num_threads(3);
  const std::vector<float> three = op();
  omp_set_num_threads(saved);
  ASSERT_EQ(one.size(), three.size());
  EXPECT_EQ(std::memcmp(one.data(), three.data(), one.size() * sizeof(float)), 0);
}

TEST(Determinism, ConvWeightGradient) {
  // 11 images: three reduction chunks, the last one ragged; also the pointwise path.
  for (const ConvGeom g : {ConvGeom{11, 5, 9, 7, 6, 3, 3, 1, 1}, ConvGeom{11, 8, 6, 6, 4, 1, 1, 1, 0}}) {
    const auto x = ref::random_floats(static_cast<std::size_t>(g.n) * g.c * g.h * g.w, 1);
    const auto dy = ref::random_floats(static_cast<std::size_t>(g.n) * g.k * g.oh() * g.ow(), 2);
    expect_thread_invariant([&] {
      std::vector<float> dw(static_cast<std::size_t>(g.k) * g.c * g.r * g.s);
      conv2d_backward_weight(g, x.data(), dy.data(), dw.data());
      return dw;
    });
  }
}

TEST(Determinism, BatchNorm) {
  const BnGeom g{9, 5, 37};
  const std::size_t size = static_cast<std::size_t>(g.n) * g.c * g.hw;
  const auto x = ref::random_floats(size, 3, 1.0f, 3.0f), dy = ref::random_floats(size, 4);
  const auto gamma = ref::random_floats(g.c, 5), beta = ref::random_floats(g.c, 6);
  expect_thread_invariant([&] {
    std::vector<float> y(size), mean(g.c), invstd(g.c), rm(g.c, 0.5f), rv(g.c, 2.0f), dx(size), dg(g.c), db(g.c);
    batchnorm_forward_train(g, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, y.data(), mean.data(),
                            invstd.data(), rm.data(), rv.data());
    batchnorm_backward(g, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx.data(), dg.data(),
                       db.data());
    std::vector<float> all = y;
    for (const auto* v : {&mean, &invstd, &rm, &rv, &dx, &dg, &db}) all.insert(all.end(), v->begin(), v->end());
    return all;
  });
}

TEST(Determinism, LinearWeightGradient) {
  const int n = 70, in = 13, out = 75;  // several row blocks over the outputs
  const auto x = ref::random_floats(static_cast<std::size_t>(n) * in, 7);
  const auto dy = ref::random_floats(static_cast<std::size_t>(n) * out, 8);
  expect_thread_invariant([&] {
    std::vector<float> dw(static_cast<std::size_t>(out) * in + out);
    linear_backward_weight(n, in, out, x.data(), dy.data(), dw.data(), dw.data() + out * in);
    return dw;
  });
}

}  // namespace
}  // namespace safnet::cpu
