// safnet merge: joins the results files of a campaign's shards.
#include <cstdio>

#include "app/results.h"
#include "host/check.h"
#include "tools/args.h"
#include "tools/commands.h"

namespace safnet {

int cmd_merge(int argc, char** argv) {
  Args a("merge",
         "Joins the results files of a campaign's shards into one, sorted by (dtype, BER, trial).\n"
         "usage: safnet merge --out MERGED.jsonl SHARD.jsonl...");
  a.opt("out", "", "merged results file (required; must not be one of the inputs)");
  std::vector<std::string> files;
  std::vector<char*> flags{argv[0], argv[1]};
  for (int i = 2; i < argc; ++i) {
    const std::string s = argv[i];
    if (s.rfind("--", 0) == 0 || s == "-h") {
      flags.push_back(argv[i]);
      if (s == "--out" && i + 1 < argc) flags.push_back(argv[++i]);
    } else {
      files.push_back(s);
    }
  }
  if (!a.parse(static_cast<int>(flags.size()), flags.data(), 2)) return 0;
  a.require({"out"});
  if (files.empty()) fail("give the shard files to merge");
  merge_results(files, a.str("out"));
  std::printf("merged %zu files into %s (%zu records)\n", files.size(), a.str("out").c_str(),
              read_results(a.str("out")).size());
  return 0;
}

}  // namespace safnet
