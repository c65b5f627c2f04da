// safnet eval: top-1/top-5 of a checkpoint with its weights stored in one or more dtypes.
#include <cstdio>

#include "host/check.h"
#include "host/saf.h"
#include "models/checkpoint.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "app/devices.h"
#include "app/evaluate.h"
#include "app/stored_model.h"

namespace safnet {

int cmd_eval(int argc, char** argv) {
  Args a("eval",
         "Evaluates a checkpoint on a data set's test split with its conv and linear weights stored in\n"
         "each given dtype (rounded as storage would hold them) and read back through the model's SAF.");
  a.opt("checkpoint", "", "checkpoint file (required)");
  add_data_flags(a, "");
  a.opt("dtype", "f32", "storage dtypes, comma separated: f32 f16 bf16 fixedM.N (fixed2.5 = Q2.5)")
      .opt("batch", "256", "evaluation batch size");
  add_device_flag(a);
  add_nan_logits_flag(a);
  if (!a.parse(argc, argv, 2)) return 0;
  a.require({"checkpoint"});
  apply_threads(a);
  std::vector<DType> dtypes;
  for (const auto& s : a.list("dtype")) dtypes.push_back(DType::parse(s));
  if (dtypes.empty()) fail("--dtype needs at least one dtype");
  const int batch = static_cast<int>(a.integer("batch"));
  if (batch < 1) fail("--batch must be >= 1");
  Backend& backend = backend_from_flags(a);

  Checkpoint ck = load_checkpoint(a.str("checkpoint"));
  const std::string dataset = checkpoint_dataset(a, ck);
  const Dataset test = load_split(a, Split::test, dataset);
  if (test.channels != ck.model.in_channels || test.height != ck.model.height || test.width != ck.model.width ||
      test.classes != ck.model.classes)
    fail(a.str("checkpoint"), ": model expects ", ck.model.in_channels, "x", ck.model.height, "x", ck.model.width,
         " images and ", ck.model.classes, " classes; ", dataset, " has ", test.channels, "x", test.height, "x",
         test.width, " and ", test.classes);
  const EvalSet set = make_eval_set(test, default_normalization(dataset));
  Evaluator ev(ck.model, batch, backend, parse_nan_logits(a.str("nan-logits")));
  std::printf("%s (%s, SAF %s) on %s test, %lld images\n", a.str("checkpoint").c_str(), ck.model.arch.c_str(),
              saf_display_name(ck.model.saf).c_str(), dataset.c_str(), static_cast<long long>(set.size()));
  std::printf("| dtype | top1 (%%) | top5 (%%) | loss | images with non-finite logits |\n|---|---|---|---|---|\n");
  for (DType dt : dtypes) {
    ParamStore stored = store_params(ck.params, dt, backend);
    const Metrics m = ev.run(stored, set);
    std::printf("| %s | %.2f | %.2f | %.4f | %lld |\n", dt.name().c_str(), m.top1, m.top5, m.loss,
                static_cast<long long>(m.nonfinite_logits));
  }
  print_device_peak(backend);
  return 0;
}

}  // namespace safnet
