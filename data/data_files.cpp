// Locating a data set's files in a directory or one of its usual subfolders.
#include "data/data_files.h"

#include <filesystem>

#include "host/check.h"

namespace safnet {

namespace {
std::string join(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

std::string first_existing(const std::string& dir, const std::vector<std::string>& names) {
  for (const auto& n : names) {
    std::error_code ec;
    const std::string p = join(dir, n);
    if (std::filesystem::is_regular_file(p, ec)) return p;
  }
  return {};
}

std::string describe(const std::vector<std::vector<std::string>>& expected) {
  std::string s;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (i) s += ", ";
    for (std::size_t j = 0; j < expected[i].size(); ++j) s += (j ? " or " : "") + expected[i][j];
  }
  return s;
}
}  // namespace

std::vector<std::string> find_data_files(const std::string& dir, const std::string& subdir,
                                         const std::vector<std::vector<std::string>>& expected,
                                         const std::string& what) {
  std::vector<std::string> candidates{dir};
  if (!subdir.empty()) candidates.push_back(join(dir, subdir));
  for (const auto& cand : candidates) {
    std::vector<std::string> found;
    bool any = false;
    for (const auto& names : expected) {
      found.push_back(first_existing(cand, names));
      any = any || !found.back().empty();
    }
    if (!any) continue;
    std::string missing;
    for (std::size_t i = 0; i < expected.size(); ++i)
      if (found[i].empty()) missing += (missing.empty() ? "" : ", ") + expected[i][0];
    if (!missing.empty())
      fail(cand, ": incomplete ", what, ": missing ", missing, " (expected ", describe(expected), ")");
    return found;
  }
  std::error_code ec;
  const bool exists = std::filesystem::is_directory(dir, ec);
  fail(dir, ": no ", what, (exists ? "" : " (no such directory)"), ": expected ", describe(expected), " in ", dir,
       subdir.empty() ? "" : " or " + join(dir, subdir));
}

}  // namespace safnet
