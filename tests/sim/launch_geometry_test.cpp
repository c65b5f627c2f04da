// The launch geometry of the weight gradients and batch norm (cuda/kernels/launch_geometry.h) for
// ResNet-20 (CIFAR, 32x32) and ResNet-18 (ImageNet, 224x224) at batch 128, layer by layer: the
// blocks and waves on 132 SMs before split-K / multi-block batch norm (one partition, one block per
// channel) and after. Prints the table of docs/BENCHMARKS.md:
//   build/tests/test_sim --gtest_filter='LaunchGeometry.*'
// and checks the rules: two waves wherever the shape leaves something to split, no empty partition,
// the workspace within its cap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cuda/math_mode.h"

#include "cuda/kernels/batchnorm.h"
#include "cuda/kernels/conv2d.h"
#include "cuda/kernels/launch_geometry.h"
#include "cuda/kernels/linear.h"
#include "cuda/kernels/splitk_gemm.h"
#include "cuda/kernels/tc_gemm.h"
#include "host/node_geometry.h"
#include "models/model.h"

namespace safnet {
namespace {

namespace gpu = ::safnet::cuda;

constexpr int kBatch = 128;
constexpr int kGemmThreads = gpu::DefaultTile::kThreads;  // the SIMT GEMM (fp32)

Graph forward_graph(const std::string& arch) {
  const ModelConfig cfg = default_model_config(arch);
  Graph g;
  const ValueId x = g.input("images", {kBatch, cfg.in_channels, cfg.height, cfg.width});
  build_forward(cfg, g, x, true);
  return g;
}

// One row per distinct shape, in the order layers first use it, with how many layers share it.
template <typename Row>
struct Rows {
  std::vector<std::string> order;
  std::map<std::string, std::pair<Row, int>> by_shape;
  void add(const std::string& shape, const Row& r) {
    auto [it, fresh] = by_shape.try_emplace(shape, r, 0);
    if (fresh) order.push_back(shape);
    ++it->second.second;
  }
};

struct GemmRow {
  std::string layer, op;
  gpu::SplitKPlan plan;
};

struct BnRow {
  std::string layer;
  gpu::BnPlan plan;
  gpu::BnEvalGrid eval;
  std::int64_t total;
};

// The rules of plan_splitk: partitions never empty and covering K; two waves unless every
// partition is already one BK step, or the workspace cap stopped the split.
void check_splitk(const gpu::SplitKPlan& p, const std::string& what) {
  constexpr int kBk = gpu::DefaultTile::BK;
  const std::int64_t steps = gpu::ceil_div(p.k, kBk), per = p.k_per_part / kBk;
  EXPECT_EQ(p.k_per_part % kBk, 0) << what;
  EXPECT_EQ(gpu::ceil_div(steps, per), p.parts) << what << ": a partition would be empty or K uncovered";
  EXPECT_LE(p.workspace_bytes(), static_cast<std::size_t>(gpu::kMaxSplitKWorkspaceFloats) * sizeof(float)) << what;
  const bool capped = (p.parts + 1) * p.m * p.n > gpu::kMaxSplitKWorkspaceFloats;
  if (per > 1 && !capped) EXPECT_GE(p.blocks(), gpu::kTargetWaves * gpu::wave_blocks(kGemmThreads)) << what;
}

void check_bn(const gpu::BnPlan& p, const std::string& what) {
  EXPECT_EQ(gpu::ceil_div(p.count, p.per_part), p.parts) << what << ": a partition would be empty";
  const bool at_least = p.per_part >= gpu::kBnThreads * gpu::kBnMinValuesPerThread || p.parts == 1;
  EXPECT_TRUE(at_least) << what << ": " << p.per_part << " values per block";
  // Fewer than two waves only where one more partition would go below the values per thread.
  if (p.blocks() < gpu::kTargetWaves * gpu::wave_blocks(gpu::kBnThreads))
    EXPECT_LT(p.count / (p.parts + 1), gpu::kBnThreads * gpu::kBnMinValuesPerThread) << what;
}

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

void print_tables(const std::string& arch) {
  const Graph g = forward_graph(arch);
  Rows<GemmRow> gemms;
  Rows<BnRow> bns;
  for (const Node& n : g.nodes()) {
    const Shape& xs = g.value(n.in[0]).shape;
    char shape[96];
    if (n.op == Op::conv2d) {
      const ConvGeom c = conv_geom(n, xs, g.value(n.in[1]).shape);
      const gpu::SplitKPlan p = gpu::conv2d_backward_weight_plan(c);
      check_splitk(p, arch + " " + n.name);
      std::snprintf(shape, sizeof shape, "conv %dx%d s%d, %d->%d, %dx%d", c.r, c.s, c.stride, c.c, c.k, c.h, c.w);
      gemms.add(shape, {n.name, "conv", p});
    } else if (n.op == Op::linear) {
      const Shape& ws = g.value(n.in[1]).shape;
      const gpu::SplitKPlan p =
          gpu::linear_backward_weight_plan(kBatch, static_cast<int>(ws[1]), static_cast<int>(ws[0]));
      check_splitk(p, arch + " " + n.name);
      std::snprintf(shape, sizeof shape, "linear %lld->%lld", static_cast<long long>(ws[1]),
                    static_cast<long long>(ws[0]));
      gemms.add(shape, {n.name, "linear", p});
    } else if (n.op == Op::batchnorm_train) {
      const BnGeom b = bn_geom(xs);
      const gpu::BnPlan p = gpu::batchnorm_plan(b);
      check_bn(p, arch + " " + n.name);
      std::snprintf(shape, sizeof shape, "C %d, N*HW %d*%d", b.c, b.n, b.hw);
      bns.add(shape, {n.name, p, gpu::batchnorm_eval_grid(b), std::int64_t{b.n} * b.c * b.hw});
    }
  }

  std::printf("\n%s, batch %d: weight gradients (tile 64x64, 256 threads; a wave = %lld blocks)\n\n", arch.c_str(),
              kBatch, static_cast<long long>(gpu::wave_blocks(kGemmThreads)));
  std::printf(
      "| layer (layers) | shape | GEMM M x N x K | before: blocks | waves | parts | K per part | after: blocks "
      "| waves | + reduce blocks | workspace MiB |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& s : gemms.order) {
    const auto& [r, count] = gemms.by_shape.at(s);
    const gpu::SplitKPlan& p = r.plan;
    std::printf("| %s (%d) | %s | %lld x %lld x %lld | %lld | %.3f | %d | %d | %lld | %.3f | %lld | %.1f |\n",
                r.layer.c_str(), count, s.c_str(), static_cast<long long>(p.m), static_cast<long long>(p.n),
                static_cast<long long>(p.k), static_cast<long long>(p.tiles), gpu::waves(p.tiles, kGemmThreads),
                p.parts, p.k_per_part, static_cast<long long>(p.blocks()), gpu::waves(p.blocks(), kGemmThreads),
                static_cast<long long>(p.reduce_blocks()), mib(p.workspace_bytes()));
  }

  std::printf(
      "\n%s, batch %d: batch norm (training forward and backward: 256 threads, a wave = %lld blocks; "
      "evaluation: HW rounded to a warp, at most 256 threads)\n\n",
      arch.c_str(), kBatch, static_cast<long long>(gpu::wave_blocks(gpu::kBnThreads)));
  std::printf(
      "| layer (layers) | shape | train/backward before: blocks | waves | parts | values per part | after: "
      "blocks | waves | eval before: blocks | waves | eval after: blocks x threads | waves |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& s : bns.order) {
    const auto& [r, count] = bns.by_shape.at(s);
    const gpu::BnPlan& p = r.plan;
    // Before: one block per channel; evaluation a grid-stride loop over min(65535, total / 256) blocks.
    const std::int64_t eval_before = std::min<std::int64_t>(65535, gpu::ceil_div(r.total, 256));
    std::printf("| %s (%d) | %s | %d | %.3f | %d | %d | %lld | %.3f | %lld | %.3f | %lld x %d | %.3f |\n",
                r.layer.c_str(), count, s.c_str(), p.c, gpu::waves(p.c, gpu::kBnThreads), p.parts, p.per_part,
                static_cast<long long>(p.blocks()), gpu::waves(p.blocks(), gpu::kBnThreads),
                static_cast<long long>(eval_before), gpu::waves(eval_before, 256),
                static_cast<long long>(r.eval.blocks()), r.eval.threads, gpu::waves(r.eval.blocks(), r.eval.threads));
  }
}

// Every GEMM launch of a training step, per layer shape and math mode: the tile launch_gemm picks
// and the blocks it launches (split-K: tiles x parts). One line each, "gemm <arch> | <layer> (<n>) |
// <shape> | <pass> | <M>x<N>x<K> | <mode> | <BM>x<BN> | <threads> | <blocks> | <parts>", which
// tools/occupancy.py joins with each kernel's registers and shared memory from the SASS.
void print_gemm_launches(const std::string& arch) {
  struct Launch {
    std::string layer, pass;
    std::int64_t m, n, k;
    bool weight_grad;
  };
  const Graph g = forward_graph(arch);
  Rows<std::vector<Launch>> layers;
  for (const Node& n : g.nodes()) {
    char shape[96];
    std::vector<Launch> l;
    if (n.op == Op::conv2d) {
      const ConvGeom c = conv_geom(n, g.value(n.in[0]).shape, g.value(n.in[1]).shape);
      std::snprintf(shape, sizeof shape, "conv %dx%d s%d, %d->%d, %dx%d", c.r, c.s, c.stride, c.c, c.k, c.h, c.w);
      const std::int64_t crs = std::int64_t{c.c} * c.r * c.s, npix = std::int64_t{c.n} * c.oh() * c.ow();
      l = {{n.name, "forward", c.k, npix, crs, false},
           {n.name, "backward-data", c.c, std::int64_t{c.n} * c.h * c.w, std::int64_t{c.k} * c.r * c.s, false},
           {n.name, "backward-weight", c.k, crs, npix, true}};
    } else if (n.op == Op::linear) {
      const Shape& ws = g.value(n.in[1]).shape;
      std::snprintf(shape, sizeof shape, "linear %lld->%lld", static_cast<long long>(ws[1]),
                    static_cast<long long>(ws[0]));
      l = {{n.name, "forward", kBatch, ws[0], ws[1], false},
           {n.name, "backward-data", kBatch, ws[1], ws[0], false},
           {n.name, "backward-weight", ws[0], ws[1], kBatch, true}};
    } else {
      continue;
    }
    layers.add(shape, l);
  }
  for (const std::string& shape : layers.order) {
    const auto& [launches, count] = layers.by_shape.at(shape);
    for (const Launch& l : launches)
      for (const MathMode mode : {MathMode::fp32, MathMode::tf32x3, MathMode::tf32, MathMode::bf16}) {
        const gpu::GemmBlockTile t = gpu::gemm_block_tile(l.m, mode);
        // Forward and backward-data run whole-K tiles; the weight gradients are split as planned.
        gpu::SplitKPlan p;
        p.tiles = gpu::ceil_div(l.m, t.bm) * gpu::ceil_div(l.n, t.bn);
        if (l.weight_grad) {
          p = gpu::plan_splitk_gemm(l.m, l.n, l.k, mode);
          // Partitions cover K, none empty, and on tensor cores none is shorter than the floor.
          const std::int64_t steps = gpu::ceil_div(l.k, t.bk), per = p.k_per_part / t.bk;
          EXPECT_EQ(p.k_per_part % t.bk, 0) << arch << " " << l.layer;
          EXPECT_EQ(gpu::ceil_div(steps, per), p.parts) << arch << " " << l.layer;
          if (mode != MathMode::fp32)
            EXPECT_GE(per, std::min<std::int64_t>(steps, gpu::kTcMinSplitKSteps)) << arch << " " << l.layer;
        }
        std::printf("gemm %s | %s (%d) | %s | %s | %lldx%lldx%lld | %s | %dx%d | %d | %lld | %d\n", arch.c_str(),
                    l.layer.c_str(), count, shape.c_str(), l.pass.c_str(), static_cast<long long>(l.m),
                    static_cast<long long>(l.n), static_cast<long long>(l.k), math_mode_name(mode), t.bm, t.bn,
                    t.threads, static_cast<long long>(p.blocks()), p.parts);
      }
  }
}

TEST(LaunchGeometry, GemmLaunchesPerMathMode) {
  print_gemm_launches("resnet20");
  print_gemm_launches("resnet18");
}

TEST(LaunchGeometry, ResNet20AtBatch128) { print_tables("resnet20"); }
TEST(LaunchGeometry, ResNet18AtBatch128) { print_tables("resnet18"); }

// Every conv layer of both networks fills two waves with its weight gradient: the goal of the
// partition rule, which check_splitk alone would let a one-step-per-partition plan miss.
TEST(LaunchGeometry, EveryResNetConvWeightGradientFillsTwoWaves) {
  for (const std::string arch : {"resnet20", "resnet18"}) {
    const Graph g = forward_graph(arch);
    for (const Node& n : g.nodes())
      if (n.op == Op::conv2d) {
        const gpu::SplitKPlan p =
            gpu::conv2d_backward_weight_plan(conv_geom(n, g.value(n.in[0]).shape, g.value(n.in[1]).shape));
        EXPECT_GE(p.blocks(), gpu::kTargetWaves * gpu::wave_blocks(kGemmThreads)) << arch << " " << n.name;
      }
  }
}

// A reduction too short to split stays one launch with no workspace; bad shapes are rejected.
TEST(LaunchGeometry, ShortReductionsStayOneLaunchAndBadShapesAreRejected) {
  EXPECT_EQ(gpu::linear_backward_weight_plan(8, 10, 10).parts, 1);  // K = 8: one BK step
  EXPECT_EQ(gpu::linear_backward_weight_plan(8, 10, 10).workspace_bytes(), 0u);
  EXPECT_EQ(gpu::batchnorm_plan({2, 3, 100}).parts, 1);  // 200 values: fewer than 4 per thread
  EXPECT_THROW(gpu::conv2d_backward_weight_plan({0, 1, 1, 1, 1, 1, 1, 1, 0}), gpu::KernelArgError);
  EXPECT_THROW(gpu::batchnorm_plan({1, 70000, 1}), gpu::KernelArgError);
}

}  // namespace
}  // namespace safnet
