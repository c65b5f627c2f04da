// Helpers for tests that drive the safnet binary: run a command, read its output, temp dirs.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include "tests/test_dir.h"

namespace safnet::test {

inline std::string safnet_bin() { return std::string(SAFNET_BINARY_DIR) + "/safnet"; }
inline std::string cifar_subset() { return std::string(SAFNET_SOURCE_DIR) + "/../shared/data/cifar10-subset"; }
inline bool have_fashion_mnist() { return std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"); }

struct RunResult {
  int code = -1;
  std::string output;  // stdout and stderr
};

inline RunResult run(const std::string& args) {
  RunResult r;
  const std::string cmd = safnet_bin() + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// A fresh directory under the test temp dir, shared by the binary's tests of that name.
inline std::string temp_dir(const std::string& name) { return scratch_dir(name).string(); }

}  // namespace safnet::test
