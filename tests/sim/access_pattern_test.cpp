// The simulator's profiler counters (cuda/sim/access_trace.h): first the counting itself on toy
// kernels with known answers, then the GEMM kernels of conv2d's three passes on ResNet shapes,
// whose main-loop global loads must stay within 1.25x of the ideal sector count and whose
// shared-memory accesses must be free of bank conflicts, in every math mode.
//
// The table the GEMM test prints is in docs/BENCHMARKS.md:
//   ./build/tests/test_sim --gtest_filter='AccessPattern*'
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/access_trace.h"
#include "cuda/kernels/conv2d.h"
#include "cuda/kernels/weight_storage.h"
#include "cuda/launch.h"
#include "cuda/math_mode.h"
#include "cuda/stored_word.h"
#include "cuda/sim/access_trace.h"
#include "cuda/wmma.h"

namespace {

namespace gpu = safnet::cuda;
namespace sim = safnet::sim;
using gpu::AccessRequest;
using gpu::access_key;
using gpu::trace_shared_load;
using gpu::trace_shared_store;
using gpu::traced_load;
using safnet::MathMode;
using safnet::StorageFormat;
using sim::AccessKind;

// Traces the launches of its lifetime into fresh counters.
class Tracing {
 public:
  Tracing() {
    sim::reset_access_stats();
    sim::set_access_tracing(true);
  }
  ~Tracing() { sim::set_access_tracing(false); }
};

template <typename T>
T* device_zeros(std::size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemset(p, 0, n * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

// ---- the counting ---------------------------------------------------------------------------

__global__ void global_patterns_kernel(const float* x, float* out) {
  const int lane = threadIdx.x;
  float sum = 0.0f;
  {
    const AccessRequest r("coalesced", 0);
    sum += traced_load(x + lane);
  }
  {
    const AccessRequest r("stride 2", 0);
    sum += traced_load(x + 2 * lane);
  }
  {
    const AccessRequest r("misaligned", 0);
    sum += traced_load(x + 1 + lane);
  }
  {
    const AccessRequest r("same word", 0);
    sum += traced_load(x);
  }
  // Odd lanes skip step 0: keys keep step 1 one request of all 32 lanes.
  for (int step = 0; step < 2; ++step) {
    if (step == 0 && lane % 2 == 1) continue;
    const AccessRequest r("predicated", access_key(step, 0));
    sum += traced_load(x + 32 * step + lane);
  }
  sum += x[lane];  // outside any AccessRequest: not counted
  out[lane] = sum;
}

TEST(AccessTrace, GlobalSectorsPerRequest) {
  float* x = device_zeros<float>(128);
  float* out = device_zeros<float>(32);
  Tracing tracing;
  SAFNET_LAUNCH(global_patterns_kernel, 1, 32, 0, nullptr, x, out);
  auto at = [](const char* site) { return sim::access_stats("global_patterns", site, AccessKind::global_load); };
  struct Want {
    const char* site;
    std::uint64_t requests, sectors, ideal;
  };
  for (const Want& w : {Want{"coalesced", 1, 4, 4}, Want{"stride 2", 1, 8, 4}, Want{"misaligned", 1, 5, 4},
                        Want{"same word", 1, 1, 1}, Want{"predicated", 2, 4 + 4, 2 + 4}}) {
    const sim::AccessStats s = at(w.site);
    EXPECT_EQ(s.requests, w.requests) << w.site;
    EXPECT_EQ(s.sectors, w.sectors) << w.site;
    EXPECT_EQ(s.ideal_sectors, w.ideal) << w.site;
  }
  EXPECT_EQ(sim::access_rows().size(), 5u);
  cudaFree(x);
  cudaFree(out);
}

__global__ void shared_patterns_kernel(float* out) {
  __shared__ __align__(16) float s[32 * 33];
  const int lane = threadIdx.x;
  s[lane] = 0.0f;
  trace_shared_store("consecutive", 0, &s[lane], 4);
  trace_shared_load("stride 2", 0, &s[2 * lane], 4);
  trace_shared_load("stride 32", 0, &s[32 * lane], 4);
  trace_shared_load("stride 33", 0, &s[33 * lane], 4);
  trace_shared_load("broadcast", 0, &s[0], 4);
  trace_shared_load("two words, one bank", 0, &s[32 * (lane % 2)], 4);
  trace_shared_load("bytes of one word", 0, reinterpret_cast<const char*>(s) + lane % 4, 1);
  trace_shared_load("8-byte consecutive", 0, &s[2 * lane], 8);
  trace_shared_load("16-byte consecutive", 0, &s[4 * lane], 16);
  trace_shared_load("16-byte stride 32 bytes", 0, &s[8 * lane], 16);
  if (lane < 8) trace_shared_load("8 lanes", 0, &s[lane], 4);
  __syncthreads();
  out[lane] = s[lane];
}

TEST(AccessTrace, SharedBankConflicts) {
  float* out = device_zeros<float>(32);
  Tracing tracing;
  SAFNET_LAUNCH(shared_patterns_kernel, 1, 32, 0, nullptr, out);
  struct Want {
    const char* site;
    AccessKind kind;
    std::uint64_t wavefronts, ideal;
  };
  const AccessKind ld = AccessKind::shared_load;
  for (const Want& w : {Want{"consecutive", AccessKind::shared_store, 1, 1}, Want{"stride 2", ld, 2, 1},
                        Want{"stride 32", ld, 32, 1}, Want{"stride 33", ld, 1, 1}, Want{"broadcast", ld, 1, 1},
                        Want{"two words, one bank", ld, 2, 1}, Want{"bytes of one word", ld, 1, 1},
                        Want{"8-byte consecutive", ld, 2, 2}, Want{"16-byte consecutive", ld, 4, 4},
                        Want{"16-byte stride 32 bytes", ld, 8, 4}, Want{"8 lanes", ld, 1, 1}}) {
    const sim::AccessStats s = sim::access_stats("shared_patterns", w.site, w.kind);
    EXPECT_EQ(s.requests, 1u) << w.site;
    EXPECT_EQ(s.wavefronts, w.wavefronts) << w.site;
    EXPECT_EQ(s.ideal_wavefronts, w.ideal) << w.site;
  }
  cudaFree(out);
}

// One warp loads a tf32 A fragment with leading dimension lda and stores an accumulator with ldc.
__global__ void wmma_patterns_kernel(int lda, int ldc, float* out) {
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) float a[16 * 32];
  __shared__ __align__(32) float c[16 * 32];
  for (int i = threadIdx.x; i < 16 * 32; i += 32) a[i] = 0.0f;
  __syncwarp();
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::load_matrix_sync(fa, a, lda);
  wmma::fill_fragment(acc, 0.0f);
  wmma::store_matrix_sync(c, acc, ldc, wmma::mem_row_major);
  wmma::store_matrix_sync(out, acc, 16, wmma::mem_row_major);
}

// The model of the mma.sync fragments (cuda/sim/wmma.h): a quad of lanes reads 8 rows and 4
// columns of A, one element per load; the accumulator goes out in 64-bit pairs, per half-warp.
TEST(AccessTrace, WmmaFragments) {
  float* out = device_zeros<float>(256);
  struct Case {
    int lda, ldc;
    std::uint64_t a_wavefronts, c_wavefronts;
  };
  // lda 20: rows g on banks 20 g mod 32, all distinct over 8 rows; lda 16: rows g and g + 2 share
  // banks (4-way). ldc 24: a half-warp's 4 rows x 8 columns on distinct banks; ldc 20: rows 0 and
  // 3 overlap on 4 banks (2-way).
  for (const Case& k : {Case{20, 24, 4, 8}, Case{16, 20, 16, 16}}) {
    Tracing tracing;
    SAFNET_LAUNCH(wmma_patterns_kernel, 1, 32, 0, nullptr, k.lda, k.ldc, out);
    const sim::AccessStats a = sim::access_stats("wmma_patterns", "matrix_a fragment", AccessKind::shared_load);
    const sim::AccessStats c = sim::access_stats("wmma_patterns", "accumulator fragment", AccessKind::shared_store);
    const sim::AccessStats g = sim::access_stats("wmma_patterns", "accumulator fragment", AccessKind::global_store);
    EXPECT_EQ(a.requests, 4u);
    EXPECT_EQ(a.ideal_wavefronts, 4u);
    EXPECT_EQ(a.wavefronts, k.a_wavefronts) << "lda " << k.lda;
    EXPECT_EQ(c.requests, 4u);
    EXPECT_EQ(c.ideal_wavefronts, 8u);
    EXPECT_EQ(c.wavefronts, k.c_wavefronts) << "ldc " << k.ldc;
    // Global: each 64-bit store covers 8 rows x 32 bytes, the device buffer's rows 64 bytes apart.
    EXPECT_EQ(g.requests, 4u);
    EXPECT_EQ(g.sectors, 4u * 8u);
    EXPECT_EQ(g.ideal_sectors, 4u * 8u);
  }
  cudaFree(out);
}

// ---- the GEMM kernels on ResNet shapes: ResNet-20's 3x3 layers, a 1x1 downsample --------------

struct Shape {
  const char* name;
  safnet::ConvGeom g;
};
// Batch 2 keeps the simulator quick; the access pattern of a tile does not depend on the batch.
const Shape kShapes[] = {
    {"16->16 32x32", {2, 16, 32, 32, 16, 3, 3, 1, 1}},
    {"32->32 16x16", {2, 32, 16, 16, 32, 3, 3, 1, 1}},
    {"64->64 8x8", {2, 64, 8, 8, 64, 3, 3, 1, 1}},
    {"16->32 32x32 s2", {2, 16, 32, 32, 32, 3, 3, 2, 1}},
    {"16->32 1x1 s2", {2, 16, 32, 32, 32, 1, 1, 2, 0}},  // a ResNet-18 style downsample
};
// 3xTF32 reads and stages its operands exactly as TF32 does (f32 tiles, the same copies); only the
// products differ, so it adds no access pattern of its own.
const MathMode kModes[] = {MathMode::fp32, MathMode::tf32, MathMode::bf16};
struct Weights {
  const char* name;
  StorageFormat format;
};
const Weights kWeights[] = {{"f32", {StorageFormat::Kind::f32, 0}},
                            {"f16", {StorageFormat::Kind::f16, 0}},
                            {"fixed8", {StorageFormat::Kind::fixed, 5}}};

enum class Pass { forward, backward_data, backward_weight };
const char* pass_name(Pass p) {
  return p == Pass::forward ? "forward" : p == Pass::backward_data ? "backward-data" : "backward-weight";
}

// The counters of one conv2d pass: every site of its GEMM kernels.
std::vector<sim::AccessRow> conv_rows(Pass pass, const safnet::ConvGeom& g, const Weights& w, MathMode mode) {
  const std::size_t xs = static_cast<std::size_t>(g.n) * g.c * g.h * g.w;
  const std::size_t ys = static_cast<std::size_t>(g.n) * g.k * g.oh() * g.ow();
  const std::size_t ws = static_cast<std::size_t>(g.k) * g.c * g.r * g.s;
  float* x = device_zeros<float>(xs);
  float* y = device_zeros<float>(ys);
  float* dw = device_zeros<float>(ws);
  unsigned char* raw = device_zeros<unsigned char>(ws * safnet::word_bytes(w.format));
  const gpu::WeightView view{raw, w.format, {}};
  std::vector<sim::AccessRow> rows;
  {
    Tracing tracing;
    switch (pass) {
      case Pass::forward: gpu::conv2d_forward(g, x, view, y, nullptr, mode); break;
      case Pass::backward_data: gpu::conv2d_backward_data(g, y, view, x, nullptr, mode); break;
      case Pass::backward_weight: gpu::conv2d_backward_weight(g, x, y, gpu::SafGrad{}, dw, nullptr, mode); break;
    }
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    rows = sim::access_rows();
  }
  for (void* p : {static_cast<void*>(x), static_cast<void*>(y), static_cast<void*>(dw), static_cast<void*>(raw)})
    cudaFree(p);
  return rows;
}

bool is_global(AccessKind k) { return k == AccessKind::global_load || k == AccessKind::global_store; }

std::string figures(const sim::AccessStats& s, AccessKind kind) {
  char buf[128];
  if (is_global(kind))
    std::snprintf(buf, sizeof buf, "%9llu  %6.2f sectors/req  ideal %6.2f  ratio %5.2f",
                  static_cast<unsigned long long>(s.requests), s.sectors_per_request(), s.ideal_per_request(),
                  s.ideal_sectors ? double(s.sectors) / double(s.ideal_sectors) : 0.0);
  else
    std::snprintf(buf, sizeof buf, "%9llu  %6.2f wavefronts/ideal", static_cast<unsigned long long>(s.requests),
                  s.ideal_wavefronts ? double(s.wavefronts) / double(s.ideal_wavefronts) : 0.0);
  return buf;
}

// Whether the layout lets a global site reach 1.25x of the ideal sectors (else it is printed, not
// asserted):
// - weights read word by word ("A tile") whose piece of a row in one K step is under a sector: a
//   warp reads BK = 16 consecutive k of each of its rows (both GEMMs), so 1-byte weights leave half
//   of each 32-byte sector unread. Raw words staged by cp.async ("A words") take two K steps of
//   1-byte rows at once and are held to the bound. Backward-data reads the filters transposed
//   (C, K, R, S) by a pass before its GEMM, so its rows are contiguous as the forward's are;
// - the gathers of x and dy with stride 2: every other pixel.
bool layout_allows(Pass pass, const Shape& shape, const Weights& w, const std::string& site) {
  if (shape.g.stride > 1 && site == "B tile") return false;
  return pass == Pass::backward_weight || !(site == "A tile" && 16 * safnet::word_bytes(w.format) < 32);
}

// Main-loop global loads within 1.25x of the ideal sectors where the layout allows it, and no bank
// conflicts anywhere in shared memory, for the three GEMMs of conv2d.
TEST(AccessPattern, ConvGemmsOnResNetShapes) {
  // pass, kernel, mode, weights, site, kind
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::string, AccessKind>;
  std::map<Key, sim::AccessStats> total;
  std::map<std::tuple<std::string, std::string, std::string>, sim::AccessStats> gather;  // pass, shape, kernel
  for (const Pass pass : {Pass::forward, Pass::backward_data, Pass::backward_weight})
    for (const MathMode mode : kModes)
      for (const Weights& w : kWeights) {
        // The weight gradient reads no weights.
        if (pass == Pass::backward_weight && w.format.kind != StorageFormat::Kind::f32) continue;
        for (const Shape& shape : kShapes)
          for (const sim::AccessRow& r : conv_rows(pass, shape.g, w, mode)) {
            const bool tc = r.kernel.find("tc_gemm") != std::string::npos;
            if (!tc && r.kernel.find("tiled_gemm") == std::string::npos) continue;  // split-K reduction
            const std::string kernel = tc ? "tc_gemm" : "tiled_gemm";
            total[{pass_name(pass), kernel, safnet::math_mode_name(mode), w.name, r.site, r.kind}] += r.stats;
            const std::string where = std::string(pass_name(pass)) + " " + shape.name + " / " + w.name + " / " +
                                      safnet::math_mode_name(mode) + " " + r.site;
            if (is_global(r.kind)) {
              if (r.site == "B tile") gather[{pass_name(pass), shape.name, kernel}] += r.stats;
              if (layout_allows(pass, shape, w, r.site))
                EXPECT_LE(r.stats.sectors, 1.25 * r.stats.ideal_sectors) << where;
            } else {
              EXPECT_EQ(r.stats.wavefronts, r.stats.ideal_wavefronts) << where;
            }
          }
      }
  std::printf("conv2d GEMMs on ResNet shapes (batch 2, the five shapes summed)\n");
  std::printf("%-15s %-10s %-6s %-7s %-20s %-12s %9s  %s\n", "pass", "kernel", "mode", "weights", "site", "access",
              "requests", "figures");
  for (const auto& [k, s] : total) {
    const auto& [pass, kernel, mode, weights, site, kind] = k;
    std::printf("%-15s %-10s %-6s %-7s %-20s %-12s %s\n", pass.c_str(), kernel.c_str(), mode.c_str(), weights.c_str(),
                site.c_str(), sim::access_kind_name(kind), figures(s, kind).c_str());
  }
  std::printf("\nthe gathers of x and dy (B tile global loads), all modes and weights, per shape\n");
  for (const auto& [k, s] : gather)
    std::printf("%-15s %-16s %-10s %s\n", std::get<0>(k).c_str(), std::get<1>(k).c_str(), std::get<2>(k).c_str(),
                figures(s, AccessKind::global_load).c_str());
}

}  // namespace
