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

bool shard_from_slurm(const std::string& text) { return text == "slurm" || text.rfind("slurm/", 0) == 0; }

Shard parse_shard(const std::string& text, const EnvLookup& env) {
  const auto slash = text.find('/');
  // `what` names where a number came from: the flag, or the Slurm variable it was read from.
  auto parse_int = [&](const std::string& s, const std::string& what) -> long long {
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      fail(what, ": expected k/n with integers 0 <= k < n");
    errno = 0;
    const long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE || v > std::numeric_limits<int>::max()) fail(what, ": number too large");
    return v;
  };
  const std::string flag = "--shard '" + text + "'";
  auto slurm_var = [&](const char* name) -> long long {
    const char* v = env(name);
    if (!v)
      fail(flag, ": ", name, " is not set: not a task of a Slurm job array (submit with sbatch --array=0-N, "
           "or give the shard as k/n)");
    return parse_int(v, flag + ": " + name + "='" + v + "'");
  };
  long long k = 0, n = 0;
  if (text == "slurm") {
    k = slurm_var("SLURM_ARRAY_TASK_ID") - slurm_var("SLURM_ARRAY_TASK_MIN");
    n = slurm_var("SLURM_ARRAY_TASK_COUNT");
    if (k < 0 || k >= n)
      fail(flag, ": task ", k, " of an array of ", n, " tasks: the array's indices are not contiguous "
           "(e.g. --array=0-15:2 or 3,7); give the shard count as --shard slurm/N");
  } else if (shard_from_slurm(text)) {
    n = parse_int(text.substr(slash + 1), flag);
    k = slurm_var("SLURM_ARRAY_TASK_ID");
    if (n < 1 || k >= n) fail(flag, ": SLURM_ARRAY_TASK_ID=", k, " is not a shard of ", n, " (0 to ", n - 1, ")");
  } else {
    if (slash == std::string::npos) fail(flag, ": expected k/n (e.g. 0/4), slurm or slurm/N");
    k = parse_int(text.substr(0, slash), flag);
    n = parse_int(text.substr(slash + 1), flag);
    if (n < 1 || k >= n) fail(flag, ": need 0 <= k < n and n >= 1");
  }
  return Shard{static_cast<int>(k), static_cast<int>(n)};
}

std::string shard_results_path(const std::string& out, Shard shard) {
  const std::string n = std::to_string(shard.n);
  const std::string digits = std::to_string(shard.k);
  const std::string k = std::string(n.size() > digits.size() ? n.size() - digits.size() : 0, '0') + digits;
  const std::size_t name = out.find_last_of('/') + 1;  // 0 when there is no folder
  std::size_t dot = out.find_last_of('.');
  if (dot == std::string::npos || dot <= name) dot = out.size();  // no extension (or a hidden file's dot)
  return out.substr(0, dot) + ".shard-" + k + "-of-" + n + out.substr(dot);
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
