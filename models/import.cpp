// State-dict import: match a file's tensors to an architecture's parameters by name and shape.
#include "models/import.h"

#include <set>

#include "host/check.h"
#include "host/faults/storage.h"

namespace safnet {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PyTorch checkpoints hold f32 mostly, but half-precision and f64 state dicts are common too.
Tensor to_f32(const Tensor& t, const std::string& name, const std::string& path) {
  if (t.dtype() == DType::f32()) return t;
  Tensor out(t.shape());
  float* o = out.data<float>();
  if (t.dtype() == DType::f16() || t.dtype() == DType::bf16()) {
    decode_words(t.raw(), t.dtype(), t.numel(), o);
    return out;
  }
  fail(path, ": tensor '", name, "' is ", t.dtype().name(), "; parameters must be floating point (F32 F64 F16 BF16)");
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

}  // namespace

std::pair<std::string, std::string> classifier_names(const ModelConfig& cfg) {
  Graph g;
  build_forward(cfg, g, g.input("images", {1, cfg.in_channels, cfg.height, cfg.width}), false);
  std::pair<std::string, std::string> out;
  for (const Node& n : g.nodes())
    if (n.op == Op::linear) out = {g.value(n.in[1]).name, n.in.size() > 2 ? g.value(n.in[2]).name : ""};
  SAFNET_CHECK(!out.first.empty(), cfg.arch, " has no linear classifier");
  return out;
}

ImportResult import_state_dict(const SafetensorsFile& f, ModelConfig cfg, const ImportOptions& opt,
                               const std::string& path) {
  if (opt.classes < 0 || opt.classes == 1) fail(path, ": --classes must be >= 2, got ", opt.classes);
  const auto [fc_weight, fc_bias] = classifier_names(cfg);
  const Tensor* file_fc = f.find(fc_weight);
  const std::int64_t file_classes = file_fc && file_fc->ndim() == 2 ? file_fc->dim(0) : 0;
  if (opt.classes > 0) cfg.classes = opt.classes;
  else if (file_classes >= 2) cfg.classes = static_cast<int>(file_classes);
  else if (file_fc) fail(path, ": classifier '", fc_weight, "' has shape ", shape_str(file_fc->shape()), ", not (classes, features)");
  const bool new_classifier = opt.classes > 0 && file_classes != 0 && file_classes != opt.classes;

  ImportResult r;
  Checkpoint& ck = r.checkpoint;
  ck.model = cfg;
  ck.params = init_params(cfg, opt.seed);
  auto reinit = [&](const std::string& name) { return new_classifier && !name.empty() && (name == fc_weight || name == fc_bias); };

  std::vector<std::string> missing, unexpected, wrong;
  std::set<std::string> seen;
  for (const auto& [name, t] : f.tensors) {
    if (ends_with(name, "num_batches_tracked")) {
      r.ignored.push_back(name);
      continue;
    }
    ParamInfo* p = ck.params.find(name);
    if (!p) {
      unexpected.push_back(name);
      continue;
    }
    seen.insert(name);
    if (reinit(name)) continue;
    if (t.shape() != p->value.shape()) {
      wrong.push_back(name + " " + shape_str(t.shape()) + " (needs " + shape_str(p->value.shape()) + ")");
      continue;
    }
    p->value = to_f32(t, name, path).clone();
  }
  for (const ParamInfo& p : ck.params.all()) {
    if (reinit(p.name)) r.reinitialised.push_back(p.name);
    else if (!seen.count(p.name)) missing.push_back(p.name);
  }
  if (!missing.empty() || !unexpected.empty() || !wrong.empty()) {
    std::string msg;
    if (!missing.empty()) msg += "; missing " + std::to_string(missing.size()) + ": " + join(missing);
    if (!unexpected.empty()) msg += "; unexpected " + std::to_string(unexpected.size()) + ": " + join(unexpected);
    if (!wrong.empty()) msg += "; wrong shape " + std::to_string(wrong.size()) + ": " + join(wrong);
    fail(path, ": does not match ", cfg.arch, " with ", cfg.classes, " classes", msg);
  }
  return r;
}

ImportResult import_state_dict(const std::string& path, const ModelConfig& cfg, const ImportOptions& opt) {
  return import_state_dict(read_safetensors(path), cfg, opt, path);
}

}  // namespace safnet
