// The simulator's traffic counters: relaxed atomics, since launches and copies come from any thread.
#include "cuda/sim/counters.h"

#include <atomic>

#include "cuda/sim/memory.h"

namespace safnet::sim {
namespace {

std::atomic<std::uint64_t> g_h2d{0}, g_d2h{0}, g_syncs{0}, g_kernels{0}, g_graphs{0}, g_graph_kernels{0};

void add(std::atomic<std::uint64_t>& c, std::uint64_t n) { c.fetch_add(n, std::memory_order_relaxed); }
std::uint64_t get(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }

}  // namespace

Counters counters() {
  return Counters{get(g_h2d), get(g_d2h), get(g_syncs), get(g_kernels), get(g_graphs), get(g_graph_kernels)};
}

void reset_counters() {
  for (auto* c : {&g_h2d, &g_d2h, &g_syncs, &g_kernels, &g_graphs, &g_graph_kernels})
    c->store(0, std::memory_order_relaxed);
}

namespace detail {

void count_copy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  if (kind == cudaMemcpyDefault) {
    const bool dev_dst = region_owns(dst, RegionKind::device), dev_src = region_owns(src, RegionKind::device);
    kind = dev_dst == dev_src ? (dev_dst ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToHost)
           : dev_dst          ? cudaMemcpyHostToDevice
                              : cudaMemcpyDeviceToHost;
  }
  if (kind == cudaMemcpyHostToDevice) add(g_h2d, count);
  if (kind == cudaMemcpyDeviceToHost) add(g_d2h, count);
}

void count_host_sync() { add(g_syncs, 1); }
void count_kernel_launch(bool by_graph) { add(by_graph ? g_graph_kernels : g_kernels, 1); }
void count_graph_launch() { add(g_graphs, 1); }

}  // namespace detail
}  // namespace safnet::sim
