// What a profiler's API trace would count on the simulator: bytes copied each way between host and
// device, host synchronisations, and kernel and graph launches. Process-wide, for tests and
// benchmarks that assert how much a workload crosses the bus (tests/sim/campaign_traffic_test.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/sim/runtime.h"

namespace safnet::sim {

struct Counters {
  std::uint64_t h2d_bytes = 0;  // host -> device copies, counted when they run (a replayed graph's too)
  std::uint64_t d2h_bytes = 0;  // device -> host copies, likewise
  // The host waited for the device: cudaStreamSynchronize, cudaDeviceSynchronize,
  // cudaEventSynchronize, and every synchronous cudaMemcpy to or from the device.
  std::uint64_t host_syncs = 0;
  std::uint64_t kernel_launches = 0;  // issued by the host, not those a graph launch runs
  std::uint64_t graph_launches = 0;
  std::uint64_t graph_kernels = 0;  // kernels run by graph launches
};

// The counts since the process started or the last reset_counters().
Counters counters();
void reset_counters();

namespace detail {
// A copy of `count` bytes that ran; its direction decided by where dst and src live.
void count_copy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind);
void count_host_sync();
void count_kernel_launch(bool by_graph);
void count_graph_launch();
}  // namespace detail

}  // namespace safnet::sim
