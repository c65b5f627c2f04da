// Benchmark: the cost of sampling one trial's bit flips (the production sampler), per storage
// dtype, for a model of WORDS weights. Usage: bench_flips [WORDS] [BER] [TRIALS]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "host/dtype.h"
#include "host/faults/flips.h"

int main(int argc, char** argv) {
  const std::int64_t words = argc > 1 ? std::atoll(argv[1]) : 269722;
  const double ber = argc > 2 ? std::atof(argv[2]) : 1e-5;
  const int trials = argc > 3 ? std::atoi(argv[3]) : 2000;
  for (const char* name : {"f32", "f16", "fixed2.5"}) {
    const safnet::DType dt = safnet::DType::parse(name);
    safnet::FlipSpec spec;
    spec.words = words;
    spec.word_bits = dt.bits();
    spec.ber = ber;
    std::int64_t flips = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < trials; ++t) flips += static_cast<std::int64_t>(safnet::sample_flips(1, static_cast<std::uint64_t>(t), spec).size());
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / trials;
    std::printf("sample_flips %-8s words %lld ber %g: %.2f us/trial, %.1f flips/trial\n", name,
                static_cast<long long>(words), ber, us, static_cast<double>(flips) / trials);
  }
  return 0;
}
