// Checkpoint (de)serialisation on top of the safetensors reader/writer.
#include "models/checkpoint.h"

#include <set>

#include "host/check.h"
#include "host/safetensors.h"
#include "host/saf.h"

namespace safnet {

namespace {
const char* kOptimPrefix = "optim.";

std::string meta_get(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  auto it = m.find(key);
  if (it == m.end()) fail(path, ": not a safnet checkpoint (metadata '", key, "' missing)");
  return it->second;
}

int meta_int(const std::map<std::string, std::string>& m, const std::string& key, const std::string& path) {
  const std::string v = meta_get(m, key, path);
  try {
    std::size_t used = 0;
    const int x = std::stoi(v, &used);
    if (used == v.size()) return x;
  } catch (...) {
  }
  fail(path, ": metadata '", key, "' is not an integer: '", v, "'");
}
}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  SafetensorsFile f;
  f.metadata = ck.meta;
  f.metadata["format"] = "safnet-checkpoint-1";
  f.metadata["arch"] = ck.model.arch;
  f.metadata["saf"] = saf_name(ck.model.saf.kind);
  f.metadata["saf_c"] = std::to_string(ck.model.saf.c);
  f.metadata["saf_nan"] = nan_mode_name(ck.model.saf.nan);
  f.metadata["saf_first"] = ck.model.saf_first ? "1" : "0";
  f.metadata["saf_last"] = ck.model.saf_last ? "1" : "0";
  f.metadata["in_channels"] = std::to_string(ck.model.in_channels);
  f.metadata["height"] = std::to_string(ck.model.height);
  f.metadata["width"] = std::to_string(ck.model.width);
  f.metadata["classes"] = std::to_string(ck.model.classes);
  f.metadata["optim_steps"] = std::to_string(ck.optim_steps);
  for (const ParamInfo& p : ck.params.all()) f.tensors.emplace_back(p.name, p.value);
  for (const auto& [name, t] : ck.optim_slots) f.tensors.emplace_back(kOptimPrefix + name, t);
  write_safetensors(path, f);
}

Checkpoint load_checkpoint(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  Checkpoint ck;
  const auto& m = f.metadata;
  if (meta_get(m, "format", path) != "safnet-checkpoint-1")
    fail(path, ": unsupported checkpoint format '", m.at("format"), "'");
  ck.model.arch = meta_get(m, "arch", path);
  float c = 1.0f;
  try {
    c = std::stof(meta_get(m, "saf_c", path));
  } catch (const std::invalid_argument&) {
    fail(path, ": metadata 'saf_c' is not a number");
  }
  try {
    ck.model.saf = parse_saf(meta_get(m, "saf", path), c, meta_get(m, "saf_nan", path));
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  ck.model.saf_first = meta_get(m, "saf_first", path) != "0";
  ck.model.saf_last = meta_get(m, "saf_last", path) != "0";
  ck.model.in_channels = meta_int(m, "in_channels", path);
  ck.model.height = meta_int(m, "height", path);
  ck.model.width = meta_int(m, "width", path);
  ck.model.classes = meta_int(m, "classes", path);
  ck.optim_steps = meta_int(m, "optim_steps", path);
  try {
    check_model_config(ck.model);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  ck.meta = m;

  // Start from the architecture's own parameter list so that names, shapes and roles come from
  // the model definition and the file can only fill them in.
  ck.params = init_params(ck.model, 0);
  std::set<std::string> seen;
  for (auto& [name, t] : f.tensors) {
    if (name.rfind(kOptimPrefix, 0) == 0) {
      ck.optim_slots[name.substr(std::char_traits<char>::length(kOptimPrefix))] = t;
      continue;
    }
    ParamInfo* p = ck.params.find(name);
    if (!p) fail(path, ": unexpected tensor '", name, "' for architecture ", ck.model.arch);
    if (t.shape() != p->value.shape())
      fail(path, ": tensor '", name, "' has shape ", shape_str(t.shape()), ", ", ck.model.arch, " needs ",
           shape_str(p->value.shape()));
    if (t.dtype() != DType::f32()) fail(path, ": tensor '", name, "' is ", t.dtype().name(), ", expected f32");
    p->value = t;
    seen.insert(name);
  }
  for (const ParamInfo& p : ck.params.all())
    if (!seen.count(p.name)) fail(path, ": tensor '", p.name, "' missing for architecture ", ck.model.arch);
  return ck;
}

}  // namespace safnet
