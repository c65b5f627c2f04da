// safnet import: a PyTorch state dict (exported by tools/export_torch.py) as a safnet checkpoint.
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "host/check.h"
#include "host/file_io.h"
#include "models/import.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace safnet {

namespace {

// "3x224x224" -> channels, height, width.
void parse_input(const std::string& s, ModelConfig& cfg) {
  int c = 0, h = 0, w = 0;
  char x1 = 0, x2 = 0, extra = 0;
  if (std::sscanf(s.c_str(), "%d%c%d%c%d%c", &c, &x1, &h, &x2, &w, &extra) != 5 || x1 != 'x' || x2 != 'x' || c <= 0 ||
      h <= 0 || w <= 0)
    fail("safnet import: --input needs CxHxW, e.g. 3x224x224, got '", s, "'");
  cfg.in_channels = c;
  cfg.height = h;
  cfg.width = w;
}

std::vector<std::string> read_class_names(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_file(path);
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

}  // namespace

int cmd_import(int argc, char** argv) {
  Args a("import",
         "Turns a PyTorch state dict, written to safetensors by tools/export_torch.py, into a safnet\n"
         "checkpoint of the named architecture (no SAF: the pretrained weights as they are). Every name\n"
         "and shape is checked; what is missing, unexpected or of the wrong shape is listed.\n"
         "num_batches_tracked is ignored. Start SAF fine-tuning from it with `safnet train --init`.");
  a.opt("model", "", "architecture (required): resnet18 resnet34 resnet20 resnet32 resnet44 resnet56 resnet110 cnn mlp")
      .opt("weights", "", "state dict in safetensors (required)")
      .opt("out", "", "checkpoint to write (required)")
      .opt("classes", "0", "model classes (0: the classifier's in the file; another size re-initialises it)")
      .opt("input", "", "input CxHxW (default: 3x224x224 for resnet18/34, 3x32x32 otherwise)")
      .opt("dataset", "", "data set the weights belong to, recorded for eval, faults and predict")
      .opt("class-names", "", "text file of class names, one per line, recorded for predict")
      .opt("seed", "0", "seed of a re-initialised classifier");
  if (!a.parse(argc, argv, 2)) return 0;
  a.require({"model", "weights", "out"});
  ModelConfig cfg = default_model_config(a.str("model"));
  if (a.has("input")) parse_input(a.str("input"), cfg);
  ImportOptions opt;
  opt.classes = static_cast<int>(a.integer("classes"));
  opt.seed = static_cast<std::uint64_t>(a.integer("seed"));

  ImportResult r = import_state_dict(a.str("weights"), cfg, opt);
  Checkpoint& ck = r.checkpoint;
  ck.meta["imported_from"] = a.str("weights");
  if (a.has("dataset")) ck.meta["dataset"] = a.str("dataset");
  if (a.has("class-names")) {
    const std::vector<std::string> names = read_class_names(a.str("class-names"));
    if (static_cast<int>(names.size()) != ck.model.classes)
      fail(a.str("class-names"), ": has ", names.size(), " class names, the model has ", ck.model.classes, " classes");
    ck.meta["class_names"] = nlohmann::json(names).dump();
  }
  save_checkpoint(a.str("out"), ck);
  std::printf("%s: %s, %dx%dx%d input, %d classes, %lld trainable parameters (from %s)\n", a.str("out").c_str(),
              ck.model.arch.c_str(), ck.model.in_channels, ck.model.height, ck.model.width, ck.model.classes,
              static_cast<long long>(ck.params.trainable_count()), a.str("weights").c_str());
  if (!r.ignored.empty()) std::printf("ignored %zu num_batches_tracked tensors\n", r.ignored.size());
  for (const auto& n : r.reinitialised) std::printf("re-initialised %s (classifier resized to %d classes)\n", n.c_str(), ck.model.classes);
  return 0;
}

}  // namespace safnet
