// The one error type and check macro: every failure carries its message and its source location.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace safnet {

// A user-facing error: the message names the file, flag or value and the problem.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::concat(args...));
}

}  // namespace safnet

// Internal invariant: on failure throws with the condition, file and line.
#define SAFNET_CHECK(cond, ...)                                                            \
  do {                                                                                     \
    if (!(cond))                                                                           \
      ::safnet::fail("internal check failed: " #cond " at " __FILE__ ":", __LINE__, " ",   \
                     ##__VA_ARGS__);                                                       \
  } while (0)
