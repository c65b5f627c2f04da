// Test helpers: fresh directories under GoogleTest's temp dir. Each test binary removes the ones it
// made when it ends with every test passed, and lists them when a test failed, to look at.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace safnet::test {

struct MadeDirs {
  std::mutex mu;
  std::vector<std::filesystem::path> dirs;
};
inline MadeDirs& made_dirs() {
  static MadeDirs m;
  return m;
}

// TempDir()/safnet_<name>_<pid>, emptied if it exists: tests of one binary share it by name,
// parallel test processes never do.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("safnet_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  MadeDirs& m = made_dirs();
  std::lock_guard<std::mutex> lock(m.mu);
  if (std::find(m.dirs.begin(), m.dirs.end(), dir) == m.dirs.end()) m.dirs.push_back(dir);
  return dir;
}

// A scratch directory named after the running test.
inline std::filesystem::path fresh_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return scratch_dir(std::string(info->test_suite_name()) + "_" + info->name() + "_" + tag);
}

// At the end of a test binary (tests/test_main.cpp).
inline void remove_scratch_dirs(bool all_passed) {
  MadeDirs& m = made_dirs();
  std::lock_guard<std::mutex> lock(m.mu);
  for (const auto& dir : m.dirs) {
    std::error_code ec;
    if (all_passed) std::filesystem::remove_all(dir, ec);
    else if (std::filesystem::exists(dir, ec)) std::fprintf(stderr, "test folder kept: %s\n", dir.c_str());
  }
  m.dirs.clear();
}

}  // namespace safnet::test
