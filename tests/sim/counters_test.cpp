// The simulator's traffic counters count what a profiler's API trace would: bytes each way, host
// synchronisations, host kernel launches apart from those a graph launch runs.
#include <gtest/gtest.h>

#include <vector>

#include "cuda/launch.h"
#include "cuda/sim/counters.h"

namespace {

__global__ void add_one_kernel(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.0f;
}

TEST(SimCounters, CountCopiesSynchronisationsAndLaunches) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(float)), cudaSuccess);
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  cudaEvent_t ev = nullptr;
  ASSERT_EQ(cudaEventCreate(&ev), cudaSuccess);
  std::vector<float> h(64, 1.0f);
  namespace sim = safnet::sim;
  sim::reset_counters();

  ASSERT_EQ(cudaMemcpyAsync(d, h.data(), 256, cudaMemcpyHostToDevice, s), cudaSuccess);
  SAFNET_LAUNCH(add_one_kernel, 2, 32, 0, s, d, 64);
  ASSERT_EQ(cudaMemcpyAsync(d, d + 32, 64, cudaMemcpyDeviceToDevice, s), cudaSuccess);  // crosses no bus
  ASSERT_EQ(cudaStreamQuery(s), cudaSuccess);  // a query does not wait
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(h.data(), d, 40, cudaMemcpyDefault), cudaSuccess);  // synchronous: waits
  ASSERT_EQ(cudaEventRecord(ev, s), cudaSuccess);
  ASSERT_EQ(cudaEventSynchronize(ev), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  sim::Counters c = sim::counters();
  EXPECT_EQ(c.h2d_bytes, 256u);
  EXPECT_EQ(c.d2h_bytes, 40u);
  EXPECT_EQ(c.host_syncs, 4u);
  EXPECT_EQ(c.kernel_launches, 1u);
  EXPECT_EQ(c.graph_launches, 0u);
  EXPECT_EQ(h[0], 2.0f);

  // Captured work counts when a graph launch runs it, as a graph's kernels, not the host's.
  sim::reset_counters();
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  SAFNET_LAUNCH(add_one_kernel, 2, 32, 0, s, d, 64);
  SAFNET_LAUNCH(add_one_kernel, 2, 32, 0, s, d, 64);
  ASSERT_EQ(cudaMemcpyAsync(h.data(), d, 12, cudaMemcpyDeviceToHost, s), cudaSuccess);
  ASSERT_EQ(cudaStreamEndCapture(s, &g), cudaSuccess);
  ASSERT_EQ(cudaGraphInstantiate(&exec, g), cudaSuccess);
  EXPECT_EQ(sim::counters().graph_kernels + sim::counters().d2h_bytes, 0u) << "nothing runs at capture";
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  c = sim::counters();
  EXPECT_EQ(c.kernel_launches, 0u);
  EXPECT_EQ(c.graph_launches, 2u);
  EXPECT_EQ(c.graph_kernels, 4u);
  EXPECT_EQ(c.d2h_bytes, 24u);
  EXPECT_EQ(c.host_syncs, 0u);
  sim::reset_counters();
  EXPECT_EQ(sim::counters().graph_launches, 0u);

  ASSERT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(g), cudaSuccess);
  ASSERT_EQ(cudaEventDestroy(ev), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
  ASSERT_EQ(cudaFree(d), cudaSuccess);
}

}  // namespace
