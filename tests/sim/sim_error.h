// The message of the SimError a simulated launch throws, or "" when it runs clean.
#pragma once
#include <functional>
#include <string>

#include "cuda/sim/exec.h"

namespace safnet::test {

inline std::string sim_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const safnet::sim::SimError& e) {
    return e.what();
  }
  return "";
}

}  // namespace safnet::test
