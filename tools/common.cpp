// Shared subcommand flags.
#include "tools/common.h"

#include <omp.h>

#include <cstdio>
#include <optional>
#include <thread>

#include "app/devices.h"
#include "host/check.h"
#include "host/saf.h"

namespace safnet {

void add_data_flags(Args& a, const std::string& default_dataset) {
  a.opt("dataset", default_dataset, std::string("data set: ") + dataset_names());
  a.opt("data", "", "data set directory (default for mnist/fashion-mnist: /usr/share/datasets/<name>)");
  a.opt("limit", "0", "use only the first N images of each split (0 = all)");
  a.opt("threads", "0", "worker threads (0 = all cores)");
  a.opt("bad-images", "stop", "image folders: an unreadable image stops the run (stop) or is left out with a warning (skip)");
}

std::string data_dir(const Args& a, const std::string& name) {
  if (a.has("data")) return a.str("data");
  if (name == "fashion-mnist" || name == "mnist") return "/usr/share/datasets/" + name;
  fail("safnet: --data DIR is required for --dataset ", name);
}

Dataset load_split(const Args& a, Split split, const std::string& dataset) {
  const std::int64_t limit = a.integer("limit");
  if (limit < 0) fail("safnet: --limit must be >= 0, got ", limit);
  const std::string name = dataset.empty() ? a.str("dataset") : dataset;
  const std::string bad = a.str("bad-images");
  if (bad != "stop" && bad != "skip") fail("safnet: --bad-images must be stop or skip, got '", bad, "'");
  Dataset d = load_dataset(name, data_dir(a, name), split, limit);
  d.bad_images = bad == "skip" ? BadImages::skip : BadImages::stop;
  return d;
}

void apply_threads(const Args& a) {
  std::int64_t n = a.integer("threads");
  if (n < 0) fail("safnet: --threads must be >= 0, got ", n);
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  omp_set_num_threads(static_cast<int>(n));
}

void add_model_flags(Args& a) {
  const auto listed = [](const std::vector<std::string>& names) {
    std::string s;
    for (const std::string& n : names) s += " " + n;
    return s;
  };
  a.opt("model", "resnet20", "architecture:" + listed(model_names()));
  a.opt("saf", "none", "SAF on conv/linear weights:" + listed(saf_names()));
  a.opt("saf-c", "0.5", "c of tanh_c (tanh(c x)); the paper's Tanh0.5 is 0.5");
  a.opt("saf-nan", "propagate", "a NaN raw weight: propagate (as in the paper) or zero");
  a.flag("no-saf-first", "read the first layer's weights without the SAF");
  a.flag("no-saf-last", "read the classifier's weights without the SAF");
}

ModelConfig model_config(const Args& a, const Dataset& data) {
  ModelConfig m;
  m.arch = a.str("model");
  m.saf = parse_saf(a.str("saf"), static_cast<float>(a.number("saf-c")), a.str("saf-nan"));
  m.saf_first = !a.on("no-saf-first");
  m.saf_last = !a.on("no-saf-last");
  m.in_channels = data.channels;
  m.height = data.height;
  m.width = data.width;
  m.classes = data.classes;
  check_model_config(m);
  return m;
}

void add_device_flag(Args& a) {
  a.opt("device", "auto", "cpu, cuda, cuda:N, sim (the CUDA backend on the simulator: slow, for checking) or auto");
  add_math_flag(a);
}

Backend& backend_from_flags(const Args& a, bool quiet) {
  Backend& b = backend_for(resolve_device(a.str("device"), quiet));
  apply_math_flag(a, b);
  if (!quiet) std::fprintf(stderr, "safnet: running on %s (%s)\n", b.device().str().c_str(), b.describe().c_str());
  return b;
}

void add_math_flag(Args& a) {
  a.opt("math", "fp32",
        "how conv and linear forwards and backward-data multiply: fp32 (FP32 FMA, the reference), or on tensor "
        "cores (CUDA only) 3xtf32 (about fp32 accuracy), tf32, bf16; see README, Math modes");
}

void apply_math_flag(const Args& a, Backend& b) {
  const std::string name = a.str("math");
  const std::optional<MathMode> mode = math_mode_from_name(name);
  if (!mode) fail("--math ", name, ": not a math mode (fp32, 3xtf32, tf32, bf16)");
  b.set_math_mode(*mode);
}

void add_nan_logits_flag(Args& a) {
  a.opt("nan-logits", "torch",
        "a NaN logit ranks above every number as in PyTorch's argmax/topk, so a row of NaNs predicts class 0 "
        "(torch), or a row whose label logit is NaN is wrong (wrong)");
}

std::string checkpoint_dataset(const Args& a, const Checkpoint& ck) {
  if (!a.str("dataset").empty()) return a.str("dataset");
  auto it = ck.meta.find("dataset");
  if (it == ck.meta.end()) fail("--dataset is required (the checkpoint does not name its data set)");
  return it->second;
}

std::string format_percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

}  // namespace safnet
