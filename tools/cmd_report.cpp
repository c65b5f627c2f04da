// safnet report: the paper-style table, CSV and SVG plot of campaign results.
#include <cstdio>

#include "host/check.h"
#include "app/report.h"
#include "app/results.h"
#include "host/file_io.h"
#include "tools/args.h"
#include "tools/commands.h"

namespace safnet {

int cmd_report(int argc, char** argv) {
  Args a("report",
         "Summarises campaign results (one or more JSONL files): prints the paper-style table\n"
         "(Top-1 clean | After Top-1 mean ± std, 95% CI, flips), and writes CSV and an SVG plot.\n"
         "usage: safnet report RESULTS.jsonl... [--csv F] [--svg F]");
  a.opt("csv", "", "write one CSV row per (model, SAF, dtype, BER)")
      .opt("svg", "", "write the accuracy vs BER plot");
  a.positionals("results files");
  if (!a.parse(argc, argv, 2)) return 0;
  const std::vector<std::string>& files = a.positional();
  if (files.empty()) fail("give at least one results file");
  std::vector<TrialRecord> records;
  for (const auto& f : files) {
    if (!file_exists(f)) fail(f, ": no such file");
    auto r = read_results(f);
    records.insert(records.end(), r.begin(), r.end());
  }
  if (records.empty()) fail("no records in ", files[0], files.size() > 1 ? " and the other files" : "");
  std::fputs(report_table(records).c_str(), stdout);
  if (a.has("csv")) {
    write_file_atomic(a.str("csv"), report_csv(records));
    std::printf("wrote %s\n", a.str("csv").c_str());
  }
  if (a.has("svg")) {
    write_file_atomic(a.str("svg"), report_svg(records));
    std::printf("wrote %s\n", a.str("svg").c_str());
  }
  return 0;
}

}  // namespace safnet
