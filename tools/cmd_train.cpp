// safnet train: train a model, optionally with a SAF on its conv and linear weights.
#include <cstdio>
#include <optional>
#include <sstream>

#include "host/check.h"
#include "host/file_io.h"
#include "host/saf.h"
#include "models/init_from.h"
#include "app/devices.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "app/interrupt.h"
#include "app/trainer.h"

namespace safnet {

namespace {

AugmentConfig parse_augment(const std::string& s, const std::string& dataset) {
  if (dataset == "imagefolder") {
    // Image folders take torchvision's random-resized crop + flip; "none" gives the eval view.
    if (s == "auto" || s == "crop-flip") {
      AugmentConfig c;
      c.resized_crop = true;
      return c;
    }
    if (s == "none") return AugmentConfig{};
    fail("safnet train: --augment '", s, "' does not apply to image folders (valid: auto crop-flip none)");
  }
  if (s == "auto") return dataset.rfind("cifar", 0) == 0 ? AugmentConfig{4, true} : AugmentConfig{};
  if (s == "none") return AugmentConfig{};
  if (s == "crop-flip") return AugmentConfig{4, true};
  if (s == "crop") return AugmentConfig{4, false};
  if (s == "flip") return AugmentConfig{0, true};
  fail("safnet train: unknown --augment '", s, "' (valid: auto none crop-flip crop flip)");
}

std::vector<int> parse_milestones(const Args& a) {
  std::vector<int> out;
  for (const auto& s : a.list("milestones")) {
    try {
      out.push_back(std::stoi(s));
    } catch (...) {
      fail("safnet train: --milestones needs comma-separated epochs, got '", a.str("milestones"), "'");
    }
  }
  return out;
}

// Defaults a --recipe changes; flags given explicitly still win.
struct Recipe {
  std::string optimizer = "sgd", lr = "0.1", wd = "1e-3", schedule = "cosine", epochs = "200", batch = "128";
};

Recipe recipe_defaults(int argc, char** argv) {
  std::string name = "cifar";
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--recipe" && i + 1 < argc) name = argv[i + 1];
    else if (arg.rfind("--recipe=", 0) == 0) name = arg.substr(9);
  }
  if (name == "cifar") return Recipe{};
  // The paper's ImageNet fine-tuning of pretrained weights into a SAF.
  if (name == "imagenet-finetune") return Recipe{"adamw", "1e-5", "1e-3", "cosine", "5", "128"};
  fail("safnet train: unknown --recipe '", name, "' (valid: cifar imagenet-finetune)");
}

}  // namespace

int cmd_train(int argc, char** argv) {
  Args a("train",
         "Trains a model from scratch (or resumes a run) and writes OUT/checkpoint.safetensors every epoch\n"
         "and OUT/train_log.jsonl. The defaults are the paper's CIFAR recipe: batch 128, SGD momentum 0.9,\n"
         "lr 0.1, weight decay 1e-3, cosine schedule, 200 epochs, random crop + flip on CIFAR.\n"
         "Ctrl-C writes a checkpoint at the current step; --resume continues exactly from it.\n"
         "--init CKPT starts from pretrained weights (e.g. from `safnet import`): raw = tau^-1(W), so the\n"
         "SAF model computes the pretrained function at step 0; --recipe imagenet-finetune sets the\n"
         "paper's fine-tuning defaults (AdamW, lr 1e-5, weight decay 1e-3, cosine, 5 epochs, batch 128).");
  const Recipe recipe = recipe_defaults(argc, argv);
  add_model_flags(a);
  add_data_flags(a, "fashion-mnist");
  a.opt("recipe", "cifar", "defaults of the flags below: cifar | imagenet-finetune")
      .opt("epochs", recipe.epochs, "training epochs")
      .opt("batch", recipe.batch, "batch size")
      .opt("optimizer", recipe.optimizer, "sgd | adamw")
      .opt("lr", recipe.lr, "peak learning rate")
      .opt("momentum", "0.9", "SGD momentum")
      .flag("nesterov", "Nesterov momentum")
      .opt("wd", recipe.wd, "weight decay on the raw weights (AdamW: decoupled)")
      .opt("schedule", recipe.schedule, "cosine | step | constant")
      .opt("warmup", "0", "linear warmup epochs")
      .opt("milestones", "", "step schedule: epochs at which lr *= --gamma, e.g. 100,150")
      .opt("gamma", "0.1", "step schedule factor")
      .opt("label-smoothing", "0", "label smoothing of the cross-entropy")
      .opt("augment", "auto", "auto (crop-flip on CIFAR, none otherwise) | none | crop-flip | crop | flip")
      .opt("seed", "0", "seed of initialisation, shuffling and augmentation")
      .opt("init", "", "start from this checkpoint's weights (same architecture; default --model is its)")
      .opt("init-mode", "inverse", "inverse: raw = tau^-1(W), clamped | raw: raw = W")
      .opt("device", "cpu", "cpu, sim, cuda or cuda:N")
      .opt("math", "fp32", "conv and linear (not weight gradients) on tensor cores (CUDA only): 3xtf32, tf32, bf16; or fp32")
      .opt("out", "", "output directory (required)")
      .flag("resume", "continue the run in OUT from its checkpoint")
      .flag("quiet", "no progress line");
  if (!a.parse(argc, argv, 2)) return 0;
  a.require({"out"});
  apply_threads(a);

  TrainConfig cfg;
  cfg.dataset = a.str("dataset");
  cfg.out_dir = a.str("out");
  cfg.epochs = static_cast<int>(a.integer("epochs"));
  cfg.batch = static_cast<int>(a.integer("batch"));
  if (cfg.epochs < 1) fail("--epochs must be >= 1");
  if (cfg.batch < 1) fail("--batch must be >= 1");
  cfg.optim.kind = a.str("optimizer");
  cfg.optim.momentum = static_cast<float>(a.number("momentum"));
  cfg.optim.nesterov = a.on("nesterov");
  cfg.optim.weight_decay = static_cast<float>(a.number("wd"));
  cfg.schedule.kind = a.str("schedule");
  cfg.schedule.base_lr = static_cast<float>(a.number("lr"));
  cfg.schedule.warmup_epochs = a.number("warmup");
  cfg.schedule.milestones = parse_milestones(a);
  cfg.schedule.gamma = static_cast<float>(a.number("gamma"));
  schedule_lr(cfg.schedule, 0, cfg.epochs);  // rejects an unknown schedule before any work
  Optimizer check_optim(cfg.optim);
  cfg.label_smoothing = static_cast<float>(a.number("label-smoothing"));
  cfg.augment = parse_augment(a.str("augment"), cfg.dataset);
  cfg.seed = static_cast<std::uint64_t>(a.integer("seed"));
  cfg.quiet = a.on("quiet");
  cfg.flags = a.values();
  const InitMode init_mode = parse_init_mode(a.str("init-mode"));
  std::optional<Checkpoint> pretrained;
  if (a.has("init") && !a.on("resume")) pretrained = load_checkpoint(a.str("init"));

  const Dataset train_set = load_split(a, Split::train);
  const Dataset test_set = load_split(a, Split::test);
  cfg.model = model_config(a, train_set);
  if (pretrained && !a.has("model")) {
    cfg.model.arch = pretrained->model.arch;
    check_model_config(cfg.model);
    cfg.flags["model"] = cfg.model.arch;
  }

  const std::string ckpt = checkpoint_path(cfg.out_dir);
  Checkpoint start;
  if (a.on("resume")) {
    if (!file_exists(ckpt)) fail("--resume: no checkpoint at ", ckpt);
    start = load_checkpoint(ckpt);
    if (start.model.arch != cfg.model.arch || start.model.saf.kind != cfg.model.saf.kind)
      fail(ckpt, ": holds a ", start.model.arch, " with SAF ", saf_name(start.model.saf.kind),
           ", but the command asks for ", cfg.model.arch, " with SAF ", saf_name(cfg.model.saf.kind));
    std::printf("resuming %s at epoch %s step %s\n", ckpt.c_str(), start.meta["epoch"].c_str(),
                start.meta["step_in_epoch"].c_str());
  } else {
    if (file_exists(ckpt))
      fail(cfg.out_dir, " already holds a run (", ckpt, "); use --resume to continue it or another --out");
    if (pretrained) {
      start = init_from(*pretrained, cfg.model, init_mode, a.str("init"));
      std::printf("init from %s (%s weights)\n", a.str("init").c_str(),
                  init_mode == InitMode::inverse ? "raw = tau^-1(W)" : "raw = W");
    } else {
      start.model = cfg.model;
      start.params = init_params(cfg.model, cfg.seed);
    }
  }
  std::printf("train %s (SAF %s, %lld trainable parameters) on %s: %lld train / %lld test images, %d epochs\n",
              cfg.model.arch.c_str(), saf_display_name(cfg.model.saf).c_str(),
              static_cast<long long>(start.params.trainable_count()), cfg.dataset.c_str(),
              static_cast<long long>(train_set.size()), static_cast<long long>(test_set.size()), cfg.epochs);
  install_interrupt_handler();
  Backend& backend = backend_for(resolve_device(a.str("device"), cfg.quiet));
  apply_math_flag(a, backend);
  if (!cfg.quiet)
    std::fprintf(stderr, "training on %s (%s)\n", backend.device().str().c_str(), backend.describe().c_str());
  const TrainResult r = train(cfg, backend, train_set, test_set, std::move(start));
  if (r.interrupted) return 130;
  std::printf("test top1 %.2f%% top5 %.2f%% loss %.4f  (%.1fs)  checkpoint %s\n", r.final_top1, r.final_top5,
              r.final_loss, r.seconds, ckpt.c_str());
  return 0;
}

}  // namespace safnet
