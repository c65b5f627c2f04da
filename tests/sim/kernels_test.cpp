// The CUDA simulator runs the selftest kernels like a GPU: results against plain loops on ragged
// sizes, identical results under different schedules, races exposed, broken kernels reported.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/sim/exec.h"
#include "tests/sim/sim_error.h"
#include "tests/sim/selftest_kernels.h"

namespace st = safnet::sim_selftest;

namespace {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    SAFNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  void upload(const std::vector<T>& host) {
    SAFNET_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  void zero() { SAFNET_CUDA_CHECK(cudaMemset(ptr_, 0, n_ * sizeof(T))); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    SAFNET_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  std::size_t n_;
};

// Small integers as floats: every sum below stays exact in float, so results compare exactly.
std::vector<float> random_ints(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-8, 8);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(d(rng));
  return v;
}

constexpr int kSizes[] = {1, 31, 33, 1000, 4099};
constexpr int kBlocks[] = {1, 32, 48, 100, 1024};

TEST(SimKernels, ScaleAddMatchesLoop) {
  for (int n : kSizes)
    for (int block : kBlocks) {
      const auto x = random_ints(n, 1), y = random_ints(n, 2);
      DeviceBuffer<float> dx(x), dy(y), dout(n);
      st::scale_add(dx.get(), dy.get(), dout.get(), 3.0f, n, 3, block, nullptr);
      const auto out = dout.download();
      for (int i = 0; i < n; ++i)
        ASSERT_EQ(out[i], 3.0f * x[i] + y[i]) << "n=" << n << " block=" << block << " i=" << i;
    }
}

TEST(SimKernels, BlockSumMatchesLoop) {
  for (int n : kSizes)
    for (int block : kBlocks)
      for (int blocks : {1, 5}) {
        const auto x = random_ints(n, 3);
        DeviceBuffer<float> dx(x), partial(blocks), out(1);
        st::block_sum(dx.get(), partial.get(), out.get(), n, blocks, block, nullptr);
        double ref = 0;
        for (float v : x) ref += v;
        ASSERT_EQ(out.download()[0], ref) << "n=" << n << " block=" << block;
      }
}

TEST(SimKernels, WarpSumMatchesLoop) {
  for (int n : kSizes)
    for (int block : kBlocks) {
      const int blocks = 4;
      const auto x = random_ints(n, 4);
      DeviceBuffer<float> dx(x), per_block(blocks);
      st::warp_sum(dx.get(), per_block.get(), n, blocks, block, nullptr);
      const auto got = per_block.download();
      for (int b = 0; b < blocks; ++b) {
        double ref = 0;
        for (int i = b * block; i < n; i += blocks * block)
          for (int t = 0; t < block && i + t < n; ++t) ref += x[i + t];
        ASSERT_EQ(got[b], ref) << "n=" << n << " block=" << block << " b=" << b;
      }
    }
}

TEST(SimKernels, DynamicSharedSegmentReverse) {
  for (int n : kSizes)
    for (int block : kBlocks) {
      const auto x = random_ints(n, 5);
      DeviceBuffer<float> dx(x), dout(n);
      st::segment_reverse(dx.get(), dout.get(), n, block, nullptr);
      const auto out = dout.download();
      for (int start = 0; start < n; start += block) {
        const int len = std::min(block, n - start);
        for (int t = 0; t < len; ++t)
          ASSERT_EQ(out[start + t], x[start + len - 1 - t]) << "n=" << n << " block=" << block;
      }
    }
}

TEST(SimKernels, AtomicHistogramCountsEveryValue) {
  const int nbins = 37;
  for (int n : kSizes)
    for (int block : kBlocks) {
      std::mt19937 rng(6);
      std::vector<int> values(n);
      std::vector<unsigned> ref(nbins, 0);
      for (int& v : values) ++ref[v = static_cast<int>(rng() % nbins)];
      DeviceBuffer<int> dv(values);
      DeviceBuffer<unsigned> bins(nbins);
      bins.zero();
      st::histogram(dv.get(), bins.get(), n, nbins, 3, block, nullptr);
      ASSERT_EQ(bins.download(), ref) << "n=" << n << " block=" << block;
    }
}

TEST(SimKernels, VotesMatchLoop) {
  for (int n : {1, 45, 300})
    for (int block : {20, 64, 100}) {
      const int blocks = (n + block - 1) / block;
      const int warps_per_block = (block + 31) / 32;
      const int warps = blocks * warps_per_block;
      std::mt19937 rng(7);
      std::vector<int> pred(n);
      for (int& p : pred) p = rng() % 3 == 0;
      pred[0] = 1;  // the first warp is unanimous only by chance; force a mixed one
      DeviceBuffer<int> dp(pred), any(warps), all(warps), counts(blocks);
      DeviceBuffer<unsigned> ballots(warps);
      st::votes(dp.get(), ballots.get(), any.get(), all.get(), counts.get(), n, blocks, block,
                nullptr);
      const auto b = ballots.download();
      const auto a = any.download(), l = all.download(), c = counts.download();
      for (int blk = 0; blk < blocks; ++blk) {
        int count = 0;
        for (int w = 0; w < warps_per_block; ++w) {
          const int lanes = std::min(32, block - w * 32);
          unsigned ref = 0;
          for (int lane = 0; lane < lanes; ++lane) {
            const int i = blk * block + w * 32 + lane;
            if (i < n && pred[i] != 0) ref |= 1u << lane;
          }
          const unsigned group = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
          const int wi = blk * warps_per_block + w;
          ASSERT_EQ(b[wi], ref) << "n=" << n << " block=" << block << " warp=" << wi;
          ASSERT_EQ(a[wi], ref != 0);
          ASSERT_EQ(l[wi], ref == group);
          count += __builtin_popcount(ref);
        }
        ASSERT_EQ(c[blk], count) << "block " << blk;
      }
    }
}

TEST(SimKernels, WarpShufflesMatchLoop) {
  for (int width : {1, 8, 32})
    for (int n : {5, 64, 250}) {
      const int block = 64;
      std::vector<int> x(n);
      for (int i = 0; i < n; ++i) x[i] = i * 7 % 23 - 11;
      DeviceBuffer<int> dx(x), scan(n), total(n), bcast(n);
      st::warp_shuffles(dx.get(), scan.get(), total.get(), bcast.get(), width, n, block, nullptr);
      const auto s = scan.download(), t = total.download(), c = bcast.download();
      auto at = [&](int i) { return i < n ? x[i] : 0; };  // the kernel pads with zeros
      for (int i = 0; i < n; ++i) {
        const int w0 = i / 32 * 32;
        int ref_scan = 0, ref_total = 0;
        for (int j = w0; j <= i; ++j) ref_scan += at(j);
        for (int j = w0; j < w0 + 32; ++j) ref_total += at(j);
        ASSERT_EQ(s[i], ref_scan) << "i=" << i;
        ASSERT_EQ(t[i], ref_total) << "i=" << i;
        ASSERT_EQ(c[i], at(i / width * width + 3 % width)) << "i=" << i << " width=" << width;
      }
    }
}

TEST(SimKernels, ThreeDimensionalIndicesCoverTheGridOnce) {
  const dim3 grid(3, 2, 2), block(5, 3, 2);
  const int total = 3 * 2 * 2 * 5 * 3 * 2;
  DeviceBuffer<int> ids(total);
  SAFNET_CUDA_CHECK(cudaMemset(ids.get(), 0xff, total * sizeof(int)));
  st::index_3d(ids.get(), grid, block, nullptr);
  const auto got = ids.download();
  for (int i = 0; i < total; ++i) ASSERT_EQ(got[i], i);
}

// Every race-free kernel above, run once; the bytes of all outputs.
std::vector<unsigned char> run_all_kernels() {
  std::vector<unsigned char> bytes;
  auto append = [&bytes](const auto& v) {
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    bytes.insert(bytes.end(), p, p + v.size() * sizeof(v[0]));
  };
  const int n = 3001, block = 96, blocks = 5;
  const auto x = random_ints(n, 8), y = random_ints(n, 9);
  DeviceBuffer<float> dx(x), dy(y), out(n), partial(blocks), sum(1);
  st::scale_add(dx.get(), dy.get(), out.get(), -2.0f, n, blocks, block, nullptr);
  append(out.download());
  st::block_sum(dx.get(), partial.get(), sum.get(), n, blocks, block, nullptr);
  append(sum.download());
  st::warp_sum(dx.get(), partial.get(), n, blocks, block, nullptr);
  append(partial.download());
  st::segment_reverse(dx.get(), out.get(), n, block, nullptr);
  append(out.download());
  std::vector<int> values(n), ints(n);
  for (int i = 0; i < n; ++i) values[i] = (i * 31) % 17, ints[i] = i % 13 - 6;
  DeviceBuffer<int> dv(values), di(ints), scan(n), total(n), bcast(n);
  DeviceBuffer<unsigned> bins(17);
  bins.zero();
  st::histogram(dv.get(), bins.get(), n, 17, blocks, block, nullptr);
  append(bins.download());
  st::warp_shuffles(di.get(), scan.get(), total.get(), bcast.get(), 8, n, block, nullptr);
  append(scan.download());
  append(total.download());
  append(bcast.download());
  return bytes;
}

TEST(SimSchedule, RaceFreeKernelsGiveIdenticalResultsUnderDifferentSeeds) {
  safnet::sim::set_schedule_seed(1);
  const auto first = run_all_kernels();
  for (std::uint64_t seed : {2ull, 0xdeadbeefull}) {
    safnet::sim::set_schedule_seed(seed);
    EXPECT_EQ(run_all_kernels(), first) << "seed " << seed;
  }
}

std::vector<float> run_racy(std::uint64_t seed, const DeviceBuffer<float>& x, int n) {
  safnet::sim::set_schedule_seed(seed);
  DeviceBuffer<float> out(n);
  st::racy_neighbour(x.get(), out.get(), n, 64, nullptr);
  return out.download();
}

TEST(SimSchedule, ShuffledOrderExposesAMissingBarrier) {
  const int n = 256;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i + 1);  // never 0, the stale value
  DeviceBuffer<float> dx(x);
  const auto a = run_racy(1, dx, n);
  EXPECT_EQ(run_racy(1, dx, n), a) << "one seed must give one schedule";
  const auto b = run_racy(2, dx, n);
  EXPECT_NE(a, b) << "two seeds should order the block's threads differently";
  int stale = 0;
  for (float v : a) stale += v == 0.0f;
  // Each read is stale when the neighbour runs later: about half of 256 reads, and surely one.
  EXPECT_GT(stale, 0);
  EXPECT_LT(stale, n);
}

TEST(SimKernels, BlocksOf1024ThreadsWork) {
  const int n = 5000, block = 1024, blocks = 3;
  const auto x = random_ints(n, 10);
  DeviceBuffer<float> dx(x), partial(blocks), sum(1), rev(n);
  st::block_sum(dx.get(), partial.get(), sum.get(), n, blocks, block, nullptr);
  double ref = 0;
  for (float v : x) ref += v;
  EXPECT_EQ(sum.download()[0], ref);
  st::segment_reverse(dx.get(), rev.get(), n, block, nullptr);
  EXPECT_EQ(rev.download()[0], x[1023]);
}

using safnet::test::sim_error_of;

// After a reported kernel the simulator must still run kernels correctly.
void expect_simulator_still_works() {
  const auto x = random_ints(100, 11);
  DeviceBuffer<float> dx(x), out(100);
  st::scale_add(dx.get(), dx.get(), out.get(), 1.0f, 100, 2, 64, nullptr);
  const auto got = out.download();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(got[i], 2.0f * x[i]);
}

TEST(SimErrors, BarrierInDivergentBranchIsReported) {
  DeviceBuffer<float> out(100);
  const std::string msg = sim_error_of([&] { st::divergent_barrier(out.get(), 100, 16, 64, nullptr); });
  EXPECT_NE(msg.find("kernel 'divergent_barrier_kernel' block ("), std::string::npos) << msg;
  EXPECT_NE(msg.find("do not all reach the same barrier"), std::string::npos) << msg;
  EXPECT_NE(msg.find("16 thread(s) wait at __syncthreads"), std::string::npos) << msg;
  EXPECT_NE(msg.find("48 thread(s) wait at __syncthreads"), std::string::npos) << msg;
  expect_simulator_still_works();
}

TEST(SimErrors, ExitWhileOthersWaitIsReported) {
  DeviceBuffer<float> out(100);
  const std::string msg = sim_error_of([&] { st::early_exit_barrier(out.get(), 100, 64, nullptr); });
  // n = 100 leaves 28 threads of the second block past the end.
  EXPECT_NE(msg.find("kernel 'early_exit_barrier_kernel' block (1,0,0)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("28 thread(s) exited"), std::string::npos) << msg;
  EXPECT_NE(msg.find("36 thread(s) wait at __syncthreads"), std::string::npos) << msg;
  expect_simulator_still_works();
}

TEST(SimErrors, ShuffleReachedByHalfTheWarpIsReported) {
  DeviceBuffer<float> out(64);
  const std::string msg = sim_error_of([&] { st::divergent_shuffle(out.get(), 64, 64, nullptr); });
  EXPECT_NE(msg.find("kernel 'divergent_shuffle_kernel'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("wait at __shfl_down_sync"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exited"), std::string::npos) << msg;
  expect_simulator_still_works();
}

TEST(SimErrorsDeathTest, WriteIntoTheGuardPageAborts) {
  // 1024 floats end exactly at a page boundary, so out[1024] is in the guard page.
  DeviceBuffer<float> out(1024);
  EXPECT_DEATH(st::oob_write(out.get(), 1024, 1, nullptr),
               "kernel 'oob_write_kernel' block \\(8,0,0\\) thread \\(0,0,0\\): invalid memory "
               "access: 0 bytes past the end of the 4096-byte cudaMalloc allocation");
}

TEST(SimErrorsDeathTest, WriteIntoTheAlignmentSlackAborts) {
  // 1023 floats leave 4 bytes of slack before the guard page; the canary catches the write.
  DeviceBuffer<float> out(1023);
  EXPECT_DEATH(st::oob_write(out.get(), 1023, 1, nullptr),
               "kernel 'oob_write_kernel': invalid memory access: a write 0 bytes past the end "
               "of the 4092-byte cudaMalloc allocation");
}

TEST(SimErrors, InBoundsWritesPassTheChecks) {
  DeviceBuffer<float> out(1023);
  st::oob_write(out.get(), 1023, 0, nullptr);
  for (float v : out.download()) ASSERT_EQ(v, 2.0f);
}

}  // namespace
