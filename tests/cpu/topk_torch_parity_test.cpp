// topk_correct under NanLogits::as_torch against Debian's python3-torch, row by row: top-1 is
// torch.argmax's answer, top-5 the first five of torch.sort(descending=True, stable=True), and
// torch.topk's wherever topk's own tie-breaking at the fifth place cannot decide. Rows hold ties,
// NaNs, infinities, all-NaN and all-inf rows. Skips, saying so, where torch is missing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "host/cpu/ops.h"
#include "tests/test_dir.h"

namespace safnet::cpu {
namespace {

bool have_torch() { return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0; }

struct Rows {
  int n, k;
  std::vector<float> z;
  std::vector<std::int32_t> labels;
};

// Rows of every kind: all NaN, all +inf, all -inf, all equal, and mixed rows of halves (ties)
// with NaN, +-inf and -0 sprinkled in.
Rows make_rows(int n, int k) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  Rows r{n, k, std::vector<float>(static_cast<std::size_t>(n) * k), std::vector<std::int32_t>(n)};
  std::mt19937_64 g(static_cast<std::uint64_t>(k));
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int i = 0; i < n; ++i) {
    const int kind = i % 10;  // 0: all NaN, 1: all +inf, 2: all -inf, 3: all equal, else mixed
    for (int j = 0; j < k; ++j) {
      float v = std::round(d(g) * 2.0f) / 2.0f;
      const double x = u(g);
      if (x < 0.1) v = nan;
      else if (x < 0.15) v = inf;
      else if (x < 0.2) v = -inf;
      else if (x < 0.25) v = -0.0f;
      r.z[static_cast<std::size_t>(i) * k + j] = kind == 0 ? nan : kind == 1 ? inf : kind == 2 ? -inf : kind == 3 ? 1.5f : v;
    }
    r.labels[i] = static_cast<std::int32_t>(g() % k);
  }
  return r;
}

TEST(TopkTorchParity, RowByRow) {
  if (!have_torch()) GTEST_SKIP() << "python3-torch is not installed: top-k parity with PyTorch not checked";
  const std::string dir = test::scratch_dir("topk_parity").string();
  std::vector<Rows> sets;
  std::string cmd = "/usr/bin/python3 " SAFNET_SOURCE_DIR "/tests/parity/torch_topk.py";
  for (const int k : {3, 5, 7, 10, 100}) {
    sets.push_back(make_rows(1000, k));
    const Rows& r = sets.back();
    const std::string in = dir + "/in" + std::to_string(k), out = dir + "/out" + std::to_string(k);
    std::ofstream f(in, std::ios::binary);
    const std::int32_t head[2] = {r.n, r.k};
    f.write(reinterpret_cast<const char*>(head), sizeof head);
    f.write(reinterpret_cast<const char*>(r.z.data()), static_cast<std::streamsize>(r.z.size() * sizeof(float)));
    f.write(reinterpret_cast<const char*>(r.labels.data()), static_cast<std::streamsize>(r.n * sizeof(std::int32_t)));
    cmd += " " + in + " " + out;
  }
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  for (const Rows& s : sets) {
    SCOPED_TRACE("k=" + std::to_string(s.k));
    const std::string out_path = dir + "/out" + std::to_string(s.k);
    std::ifstream f(out_path, std::ios::binary);
    const std::vector<char> ref((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_EQ(ref.size(), static_cast<std::size_t>(s.n) * 4) << out_path;
    int mixed = 0, mixed_decided = 0, bad = 0;
    for (int i = 0; i < s.n; ++i) {
      std::int64_t t1 = -1, t5 = -1;
      topk_correct(1, s.k, s.z.data() + static_cast<std::size_t>(i) * s.k, &s.labels[i], &t1, &t5, NanLogits::as_torch);
      const char* r = ref.data() + static_cast<std::size_t>(i) * 4;
      const bool ok = t1 == r[0] && t5 == r[2] && (r[3] || t5 == r[1]);
      mixed += i % 10 >= 4;
      mixed_decided += i % 10 >= 4 && !r[3];
      if (!ok && ++bad <= 5)
        ADD_FAILURE() << "row " << i << " label " << s.labels[i] << ": top1 " << t1 << " top5 " << t5
                      << "; torch argmax " << int{r[0]} << ", topk " << int{r[1]} << ", stable sort " << int{r[2]};
    }
    // topk itself decides most mixed rows; only ties at the fifth place are left to the sort.
    EXPECT_GT(mixed_decided, mixed / 2);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace safnet::cpu
