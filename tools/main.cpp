// safnet: one command line for training, evaluation and fault campaigns.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "host/check.h"
#include "tools/commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* help;
};

const Command kCommands[] = {
    {"train", safnet::cmd_train, "train a model (optionally with a SAF on its weights)"},
    {"eval", safnet::cmd_eval, "evaluate a checkpoint with weights stored in a dtype (no faults)"},
    {"faults", safnet::cmd_faults, "run a Monte Carlo fault campaign, or replay one trial"},
    {"report", safnet::cmd_report, "paper-style table, CSV and SVG plot of campaign results"},
    {"merge", safnet::cmd_merge, "join the results of a campaign's shards"},
    {"import", safnet::cmd_import, "turn a PyTorch state dict (tools/export_torch.py) into a checkpoint"},
    {"predict", safnet::cmd_predict, "top-5 classes of image files, clean or under one fault trial"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: safnet <command> [flags]   (safnet <command> --help for its flags)\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc, argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "safnet %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::string valid;
  for (const auto& c : kCommands) valid += std::string(" ") + c.name;
  std::fprintf(stderr, "safnet: unknown command '%s' (valid:%s)\n", argv[1], valid.c_str());
  return 2;
}
