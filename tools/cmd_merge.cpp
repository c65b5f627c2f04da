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
  a.flag("allow-mixed-devices", "join files whose trials ran on different kinds of device (cpu, cuda, sim)");
  a.positionals("shard results files");
  if (!a.parse(argc, argv, 2)) return 0;
  const std::vector<std::string>& files = a.positional();
  a.require({"out"});
  if (files.empty()) fail("give the shard files to merge");
  merge_results(files, a.str("out"), a.on("allow-mixed-devices"));
  std::printf("merged %zu files into %s (%zu records)\n", files.size(), a.str("out").c_str(),
              read_results(a.str("out")).size());
  return 0;
}

}  // namespace safnet
