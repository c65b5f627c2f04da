// safnet predict: top-5 classes (and optionally logits) of image files, clean or under one fault trial.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "data/image_decode.h"
#include "data/image_transforms.h"
#include "host/check.h"
#include "host/executor.h"
#include "host/file_io.h"
#include "app/campaign.h"
#include "tools/commands.h"
#include "tools/campaign_flags.h"
#include "tools/common.h"

namespace safnet {

namespace {

bool is_image_name(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// Directories are scanned recursively for .jpg/.jpeg/.png in sorted order; files are taken as given.
std::vector<std::string> list_images(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    std::error_code ec;
    if (std::filesystem::is_directory(e, ec)) {
      std::vector<std::string> found;
      for (auto it = std::filesystem::recursive_directory_iterator(e, ec); !ec && it != std::filesystem::recursive_directory_iterator();
           it.increment(ec))
        if (it->is_regular_file() && is_image_name(it->path())) found.push_back(it->path().string());
      if (ec) fail(e, ": cannot scan directory: ", ec.message());
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (std::filesystem::is_regular_file(e, ec)) {
      out.push_back(e);
    } else {
      fail(e, ": no such image file or directory");
    }
  }
  if (out.empty()) fail("--images: no .jpg/.jpeg/.png files found");
  return out;
}

std::vector<std::string> class_names(const Checkpoint& ck, const std::string& path) {
  auto it = ck.meta.find("class_names");
  if (it == ck.meta.end()) return {};
  std::vector<std::string> names;
  try {
    names = nlohmann::json::parse(it->second).get<std::vector<std::string>>();
  } catch (const std::exception&) {
    fail(path, ": metadata 'class_names' is not a JSON list of strings");
  }
  if (static_cast<int>(names.size()) != ck.model.classes)
    fail(path, ": metadata 'class_names' has ", names.size(), " names for ", ck.model.classes, " classes");
  return names;
}

// RFC 4180: fields holding a comma, quote or line break are quoted, quotes doubled.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// How images become model input: the ImageNet eval transform for 224-input models, otherwise a
// resize and centre crop to the model's own (square) input.
struct Preprocess {
  int resize = 0, crop = 0, channels = 3;
  Normalization norm;
};

Preprocess preprocess_for(const Checkpoint& ck, const std::string& dataset, const std::string& path) {
  const ModelConfig& m = ck.model;
  if (m.height != m.width) fail(path, ": predict needs a square model input, this one is ", m.height, "x", m.width);
  if (m.in_channels != 1 && m.in_channels != 3) fail(path, ": predict needs 1- or 3-channel input, this model takes ", m.in_channels);
  Preprocess p;
  p.channels = m.in_channels;
  if (m.height == kEvalCrop) {
    p.resize = kEvalResize;
    p.crop = kEvalCrop;
    const std::string name = dataset.empty() ? "imagefolder" : dataset;
    p.norm = default_normalization(name);
    if (static_cast<int>(p.norm.mean.size()) != m.in_channels)
      fail(path, ": data set ", name, " has ", p.norm.mean.size(), " channels, the model takes ", m.in_channels);
    return p;
  }
  if (dataset.empty()) fail(path, ": names no data set, so its input normalisation is unknown (give --dataset)");
  p.resize = p.crop = m.height;
  p.norm = default_normalization(dataset);
  if (static_cast<int>(p.norm.mean.size()) != m.in_channels)
    fail(path, ": data set ", dataset, " has ", p.norm.mean.size(), " channels, the model takes ", m.in_channels);
  return p;
}

// One decoded image into `out` (C, crop, crop), normalised.
void load_image(const std::string& file, const Preprocess& p, float* out) {
  const Image img = decode_image(file);
  const std::size_t plane = static_cast<std::size_t>(p.crop) * p.crop;
  std::vector<std::uint8_t> rgb(3 * plane);  // (3, crop, crop)
  eval_transform(img, p.resize, p.crop, rgb.data());
  for (int c = 0; c < p.channels; ++c) {
    const float mean = p.norm.mean[static_cast<std::size_t>(c)], inv = 1.0f / p.norm.std[static_cast<std::size_t>(c)];
    for (std::size_t i = 0; i < plane; ++i) {
      // Grey as PIL's convert("L"): ITU-R 601-2 luma.
      const float v = p.channels == 3 ? rgb[c * plane + i]
                                      : static_cast<float>((rgb[i] * 299 + rgb[plane + i] * 587 + rgb[2 * plane + i] * 114 + 500) / 1000);
      out[c * plane + i] = (v / 255.0f - mean) * inv;
    }
  }
}

}  // namespace

int cmd_predict(int argc, char** argv) {
  Args a("predict",
         "Writes, per image, its path and the checkpoint's top-5 classes with their softmax probabilities\n"
         "(class names when the checkpoint has them, else indices) to a CSV file; --logits adds the raw\n"
         "logits. Images get the evaluation transforms: resize 256 + centre crop 224 with ImageNet\n"
         "normalisation for 224-input models, else resize and crop to the model's input with its data\n"
         "set's normalisation. --dtype/--ber/--seed/--trial predict with the weights stored in that dtype\n"
         "and the faults of that trial, exactly as `safnet faults` with the same dtype, BER and seed\n"
         "(default fault targets) evaluates that trial.");
  a.opt("checkpoint", "", "checkpoint file (required)")
      .opt("images", "", "image directories (scanned recursively) and/or files, comma separated (required)")
      .opt("out", "", "CSV file to write (required)")
      .flag("logits", "add the columns logit_0 .. logit_{K-1}")
      .opt("dataset", "", "data set whose normalisation to use (default: imagefolder for 224-input models, else the checkpoint's)")
      .opt("dtype", "f32", "storage dtype of the weights: f32 f16 bf16 fixedM.N")
      .opt("ber", "0", "bit error rate of the fault trial")
      .opt("seed", "0", "campaign seed")
      .opt("trial", "0", "trial number (-1: no faults)")
      .opt("batch", "32", "images per forward pass")
      .opt("threads", "0", "worker threads (0 = all cores)");
  add_nan_logits_flag(a);
  add_math_flag(a);
  if (!a.parse(argc, argv, 2)) return 0;
  a.require({"checkpoint", "images", "out"});
  apply_threads(a);
  apply_math_flag(a, cpu_backend());  // predict runs on the CPU: fp32 only
  const int batch = static_cast<int>(a.integer("batch"));
  const bool nan_first = parse_nan_logits(a.str("nan-logits")) == NanLogits::as_torch;
  if (batch < 1) fail("--batch must be >= 1");
  const std::string ckpt_path = a.str("checkpoint");
  Checkpoint ck = load_checkpoint(ckpt_path);
  const std::vector<std::string> names = class_names(ck, ckpt_path);
  // 224-input models get ImageNet's normalisation unless --dataset says otherwise.
  std::string dataset = a.str("dataset");
  if (dataset.empty() && ck.meta.count("dataset") && ck.model.height != kEvalCrop) dataset = ck.meta.at("dataset");
  const Preprocess pre = preprocess_for(ck, dataset, ckpt_path);
  const std::vector<std::string> files = list_images(a.list("images"));

  CampaignConfig cc;
  cc.dtypes = {DType::parse(a.str("dtype"))};
  cc.bers = parse_ber_list(a.str("ber"));
  if (cc.bers.size() != 1) fail("--ber needs one bit error rate, got '", a.str("ber"), "'");
  cc.seed = static_cast<std::uint64_t>(a.integer("seed"));
  const std::int64_t trial = a.integer("trial");
  if (trial < -1) fail("--trial must be >= -1, got ", trial);
  const ModelConfig model = ck.model;
  Campaign campaign(std::move(ck), "", dataset, 0, EvalSet{}, cc, cpu_backend());
  const std::unique_ptr<StoredModel> stored = campaign.faulty_model(cc.dtypes[0], cc.bers[0], trial);
  ParamStore& params = stored->params();

  const int k = model.classes, top = std::min(5, model.classes);
  std::string csv = "path";
  for (int i = 1; i <= top; ++i) csv += ",top" + std::to_string(i);
  for (int i = 1; i <= top; ++i) csv += ",prob" + std::to_string(i);
  if (a.on("logits"))
    for (int i = 0; i < k; ++i) csv += ",logit_" + std::to_string(i);
  csv += "\n";

  struct Plan {
    Graph g;
    ValueId x = -1, logits = -1;
    std::unique_ptr<Executor> exec;
  };
  std::map<int, std::unique_ptr<Plan>> plans;
  const std::int64_t per_image = static_cast<std::int64_t>(model.in_channels) * model.height * model.width;
  for (std::size_t start = 0; start < files.size(); start += static_cast<std::size_t>(batch)) {
    const int n = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(batch), files.size() - start));
    auto& plan = plans[n];
    if (!plan) {
      plan = std::make_unique<Plan>();
      plan->x = plan->g.input("images", {n, model.in_channels, model.height, model.width});
      plan->logits = build_forward(model, plan->g, plan->x, false);
      plan->exec = std::make_unique<Executor>(plan->g, std::vector<ValueId>{plan->logits});
    }
    Tensor x({n, model.in_channels, model.height, model.width});  // (N, C, H, W)
    for (int i = 0; i < n; ++i) load_image(files[start + static_cast<std::size_t>(i)], pre, x.data<float>() + i * per_image);
    plan->exec->bind_params(params);
    plan->exec->set_input(plan->x, x);
    plan->exec->run();
    const float* logits = plan->exec->get(plan->logits).data<float>();  // (N, K)
    for (int i = 0; i < n; ++i) {
      const float* l = logits + static_cast<std::ptrdiff_t>(i) * k;
      std::vector<int> order(static_cast<std::size_t>(k));
      for (int j = 0; j < k; ++j) order[static_cast<std::size_t>(j)] = j;
      // Highest first, ties to the lower index; NaN first as PyTorch's argmax/topk rank it (or last).
      std::stable_sort(order.begin(), order.end(), [&](int p, int q) {
        const bool np = l[p] != l[p], nq = l[q] != l[q];
        return np != nq ? (nan_first ? np : nq) : l[p] > l[q];
      });
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < k; ++j) mx = std::max(mx, static_cast<double>(l[j]));
      for (int j = 0; j < k; ++j) sum += std::exp(static_cast<double>(l[j]) - mx);
      csv += csv_field(files[start + static_cast<std::size_t>(i)]);
      for (int t = 0; t < top; ++t) {
        const int c = order[static_cast<std::size_t>(t)];
        csv += "," + csv_field(names.empty() ? std::to_string(c) : names[static_cast<std::size_t>(c)]);
      }
      for (int t = 0; t < top; ++t) csv += "," + number(std::exp(static_cast<double>(l[order[static_cast<std::size_t>(t)]]) - mx) / sum);
      if (a.on("logits"))
        for (int j = 0; j < k; ++j) csv += "," + number(l[j]);
      csv += "\n";
    }
  }
  write_file_atomic(a.str("out"), csv);
  if (cc.bers[0] > 0 && trial >= 0)
    std::printf("%s: %zu images, %s weights, BER %g, seed %llu, trial %lld\n", a.str("out").c_str(), files.size(),
                cc.dtypes[0].name().c_str(), cc.bers[0], static_cast<unsigned long long>(cc.seed), static_cast<long long>(trial));
  else
    std::printf("%s: %zu images, %s weights, no faults\n", a.str("out").c_str(), files.size(), cc.dtypes[0].name().c_str());
  return 0;
}

}  // namespace safnet
