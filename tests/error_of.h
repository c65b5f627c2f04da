// Test helper: the message of the safnet::Error a call throws (a test failure when it throws none).
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "host/check.h"

namespace safnet::test {

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected safnet::Error";
  return {};
}

}  // namespace safnet::test
