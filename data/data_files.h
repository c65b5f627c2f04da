// Locating a data set's files in a directory or one of its usual subfolders.
#pragma once
#include <string>
#include <vector>

namespace safnet {

// Each entry of `expected` lists the accepted names of one file (e.g. "x" and "x.gz").
// Returns one path per entry, all from the first of dir, dir/subdir that holds any of them.
// Throws one error naming the directory and every expected file when one is missing.
std::vector<std::string> find_data_files(const std::string& dir, const std::string& subdir,
                                         const std::vector<std::vector<std::string>>& expected,
                                         const std::string& what);

}  // namespace safnet
