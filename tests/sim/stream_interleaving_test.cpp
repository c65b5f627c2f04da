// Interleaved streams on the simulator (set_stream_interleaving): each stream's work keeps its
// order, the streams' work mixes as a seed decides, waits on events hold, graph nodes interleave,
// and the host's waits run what they wait for.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "cuda/launch.h"
#include "cuda/sim/runtime.h"

namespace {

__global__ void append_kernel(int* log, int* n, int id) { log[(*n)++] = id; }

// Stream a appends 0..39, with an event recorded after its 10th; stream b waits on that event after
// its 5th and appends 100..119, the last ten from a graph. Returns the log.
std::vector<int> run(std::uint64_t seed) {
  int* d = nullptr;
  EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(int)), cudaSuccess);
  EXPECT_EQ(cudaMemset(d, 0, 64 * sizeof(int)), cudaSuccess);
  int* log = d;
  int* n = d + 63;
  cudaStream_t a = nullptr, b = nullptr;
  EXPECT_EQ(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t ten = nullptr;
  EXPECT_EQ(cudaEventCreateWithFlags(&ten, cudaEventDisableTiming), cudaSuccess);
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  EXPECT_EQ(cudaStreamBeginCapture(b, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  for (int i = 10; i < 20; ++i) SAFNET_LAUNCH(append_kernel, 1, 1, 0, b, log, n, 100 + i);
  EXPECT_EQ(cudaStreamEndCapture(b, &g), cudaSuccess);
  EXPECT_EQ(cudaGraphInstantiate(&exec, g), cudaSuccess);
  std::vector<int> out;
  {
    safnet::sim::ScopedStreamInterleaving on(seed);
    for (int i = 0; i < 40; ++i) {
      SAFNET_LAUNCH(append_kernel, 1, 1, 0, a, log, n, i);
      if (i == 9) EXPECT_EQ(cudaEventRecord(ten, a), cudaSuccess);
    }
    for (int i = 0; i < 10; ++i) {
      SAFNET_LAUNCH(append_kernel, 1, 1, 0, b, log, n, 100 + i);
      if (i == 4) EXPECT_EQ(cudaStreamWaitEvent(b, ten, 0), cudaSuccess);
    }
    EXPECT_EQ(cudaGraphLaunch(exec, b), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(b), cudaSuccess);
    // A synchronous copy waits for every stream.
    out.resize(64);
    EXPECT_EQ(cudaMemcpy(out.data(), d, 64 * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
    out.resize(static_cast<std::size_t>(out[63]));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(g);
  cudaEventDestroy(ten);
  cudaStreamDestroy(a);
  cudaStreamDestroy(b);
  cudaFree(d);
  return out;
}

TEST(StreamInterleaving, EachStreamInOrderStreamsMixedEventWaitsHeld) {
  const std::vector<int> off = run(0);
  std::vector<int> issued;
  for (int i = 0; i < 40; ++i) issued.push_back(i);
  for (int i = 0; i < 20; ++i) issued.push_back(100 + i);
  EXPECT_EQ(off, issued) << "without interleaving, work runs as issued";

  int graph_mixed = 0;
  for (const std::uint64_t seed : {1, 2, 3, 4}) {
    const std::vector<int> log = run(seed);
    ASSERT_EQ(log.size(), 60u) << "seed " << seed;
    std::vector<int> a, b;
    for (int v : log) (v < 100 ? a : b).push_back(v);
    EXPECT_TRUE(std::is_sorted(a.begin(), a.end()) && std::is_sorted(b.begin(), b.end())) << "seed " << seed;
    const auto pos = [&](int v) { return std::find(log.begin(), log.end(), v) - log.begin(); };
    EXPECT_LT(pos(9), pos(105)) << "b's work after the wait ran before a recorded the event, seed " << seed;
    // a and b switch places more than the one time issue order has.
    int switches = 0;
    for (std::size_t i = 1; i < log.size(); ++i) switches += (log[i] < 100) != (log[i - 1] < 100);
    EXPECT_GT(switches, 1) << "seed " << seed;
    // A graph launch's nodes run one by one among the other streams' work.
    graph_mixed += std::any_of(log.begin() + pos(110), log.begin() + pos(119), [](int v) { return v < 100; });
    EXPECT_EQ(run(seed), log) << "one seed, one interleaving";
  }
  EXPECT_GT(graph_mixed, 0) << "no seed ran a's work between the graph's nodes";
}

}  // namespace
