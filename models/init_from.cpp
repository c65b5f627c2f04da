// Pretrained raw weights through the inverse SAF.
#include "models/init_from.h"

#include <map>

#include "host/check.h"
#include "host/saf.h"

namespace safnet {

InitMode parse_init_mode(const std::string& name) {
  if (name == "inverse") return InitMode::inverse;
  if (name == "raw") return InitMode::raw;
  fail("unknown init mode '", name, "' (valid: inverse raw)");
}

Checkpoint init_from(const Checkpoint& src, const ModelConfig& cfg, InitMode mode, const std::string& src_path) {
  check_model_config(cfg);
  const ModelConfig& s = src.model;
  if (s.arch != cfg.arch || s.in_channels != cfg.in_channels || s.classes != cfg.classes)
    fail(src_path, ": holds a ", s.arch, " for ", s.in_channels, "-channel images and ", s.classes,
         " classes; the run needs a ", cfg.arch, " for ", cfg.in_channels, "-channel images and ", cfg.classes,
         " classes", s.classes != cfg.classes ? " (`safnet import --classes N` resizes a classifier)" : "");
  // The run's parameter list from its graph (no random initialisation of millions of weights).
  Graph g;
  build_forward(cfg, g, g.input("images", {1, cfg.in_channels, cfg.height, cfg.width}), false);
  std::size_t expected = 0;
  for (const Value& v : g.values()) {
    if (v.kind != ValueKind::param && v.kind != ValueKind::state) continue;
    ++expected;
    const ParamInfo* q = src.params.find(v.name);
    if (!q) fail(src_path, ": tensor '", v.name, "' missing for architecture ", cfg.arch);
    if (q->value.shape() != v.shape)
      fail(src_path, ": tensor '", v.name, "' has shape ", shape_str(q->value.shape()), ", the run's ", cfg.arch,
           " needs ", shape_str(v.shape));
    if (q->value.dtype() != DType::f32()) fail(src_path, ": tensor '", v.name, "' is ", q->value.dtype().name(), ", expected f32");
  }
  if (expected != src.params.all().size())
    fail(src_path, ": holds ", src.params.all().size(), " tensors, the run's ", cfg.arch, " has ", expected);

  Checkpoint out;
  out.model = cfg;
  out.params = src.params.clone();
  const std::map<std::string, Saf> from_safs = weight_safs(s), to_safs = weight_safs(cfg);
  for (ParamInfo& p : out.params.all()) {
    if (!p.carries_saf()) continue;
    const Saf from = from_safs.at(p.name), to = to_safs.at(p.name);
    float* w = p.value.data<float>();
    for (std::int64_t i = 0; i < p.value.numel(); ++i) {
      const float pretrained = saf_value(from, w[i]);
      w[i] = mode == InitMode::inverse ? saf_inverse(to, pretrained) : pretrained;
    }
  }
  out.meta["init_from"] = src_path;
  out.meta["init_mode"] = mode == InitMode::inverse ? "inverse" : "raw";
  out.meta["init_saf"] = saf_name(cfg.saf.kind);
  return out;
}

}  // namespace safnet
