// Parsers of the campaign flags.
#include "tools/campaign_flags.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "host/check.h"

namespace safnet {

namespace {

double parse_number(const std::string& item, const std::string& what) {
  if (item.empty()) fail(what, ": empty value");
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(item.c_str(), &end);
  if (end != item.c_str() + item.size() || errno == ERANGE)
    fail(what, ": '", item, "' is not a number (or is out of double range)");
  return v;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  auto parse_int = [&](const std::string& s) -> long long {
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      fail("--shard '", text, "': expected k/n with integers 0 <= k < n");
    errno = 0;
    const long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE || v > std::numeric_limits<int>::max())
      fail("--shard '", text, "': number too large");
    return v;
  };
  if (slash == std::string::npos) fail("--shard '", text, "': expected k/n, e.g. 0/4");
  const long long k = parse_int(text.substr(0, slash));
  const long long n = parse_int(text.substr(slash + 1));
  if (n < 1 || k >= n) fail("--shard '", text, "': need 0 <= k < n and n >= 1");
  return Shard{static_cast<int>(k), static_cast<int>(n)};
}

std::vector<double> parse_ber_list(const std::string& text) {
  std::vector<double> out;
  std::size_t start = 0;
  for (int index = 1;; ++index) {
    const std::size_t comma = text.find(',', start);
    const std::string item =
        trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    const std::string what = "--ber '" + text + "' item " + std::to_string(index);
    const double v = parse_number(item, what);
    if (!std::isfinite(v) || v < 0 || v > 1) fail(what, ": ", item, " is outside [0, 1]");
    if (std::find(out.begin(), out.end(), v) != out.end())
      fail(what, ": ", item, " is listed twice");
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace safnet
