// Test helper: a fresh, empty directory under GoogleTest's temp dir, named after the running test.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace safnet::test {

inline std::filesystem::path fresh_dir(const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              ("safnet_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace safnet::test
