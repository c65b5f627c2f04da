// safnet faults: a Monte Carlo fault campaign over dtypes x BERs x trials, or the replay of one trial.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "host/check.h"
#include "host/file_io.h"
#include "host/saf.h"
#include "app/campaign.h"
#include "app/vulnerability.h"
#include "tools/commands.h"
#include "tools/campaign_flags.h"
#include "tools/common.h"
#include "app/devices.h"
#include "app/interrupt.h"

namespace safnet {

namespace {

FaultTargets parse_targets(const Args& a) {
  FaultTargets t;
  t.layers.clear();
  for (const auto& l : a.list("layers")) {
    if (l != "conv" && l != "linear" && l != "batchnorm")
      fail("--layers: unknown layer kind '", l, "' (valid: conv linear batchnorm)");
    t.layers.push_back(l);
  }
  t.biases = a.on("biases");
  t.batchnorm = a.on("batchnorm");
  if (t.batchnorm) t.layers.push_back("batchnorm");
  t.pattern = a.str("params");
  return t;
}

void print_replay(const std::vector<FlipReport>& flips, const TrialRecord& r, DType dt) {
  std::printf("trial %lld, %s, BER %g: %lld flipped bits\n", static_cast<long long>(r.trial), r.dtype.c_str(), r.ber,
              static_cast<long long>(flips.size()));
  std::printf("%-28s %10s %4s %18s %18s %14s %14s %12s\n", "tensor", "index", "bit", "stored before", "stored after",
              "value before", "value after", "read (SAF)");
  const int hex_digits = static_cast<int>(dt.size() * 2);
  for (const FlipReport& f : flips)
    std::printf("%-28s %10lld %4d %#18.*llx %#18.*llx %14.6g %14.6g %12.6g\n", f.tensor.c_str(),
                static_cast<long long>(f.index), f.bit, hex_digits, static_cast<unsigned long long>(f.before),
                hex_digits, static_cast<unsigned long long>(f.after), f.value_before, f.value_after, f.read_after);
  std::printf("top1 %.2f%% top5 %.2f%% loss %.6g nonfinite weights %lld\n", r.top1, r.top5, r.loss,
              static_cast<long long>(r.nonfinite));
}

}  // namespace

int cmd_faults(int argc, char** argv) {
  Args a("faults",
         "Runs a fault campaign: the checkpoint's conv and linear weights are stored in each dtype, every\n"
         "stored bit flips with probability BER (Philox4x32-10 keyed by --seed, trial = subsequence), and\n"
         "the test set is evaluated through the model's SAF. One JSON line per trial is appended (fsync)\n"
         "to --out; rerunning the same command resumes. --replay T --list-flips shows one trial's flips.\n"
         "--until-ci W stops each (dtype, BER) once the 95% CI of its mean top-1 is within +-W points\n"
         "(after --min-trials, at most --trials); the decision is made in trial order, so the file is the\n"
         "same for any --threads and after a resume, and `safnet report` names the cells that stopped.\n"
         "A trial whose flips all lie in later layers starts from clean activations cached once per dtype\n"
         "(--prefix-cache MiB; the results are bit-identical to evaluating the whole network).");
  a.opt("checkpoint", "", "checkpoint file (required)");
  add_data_flags(a, "");
  a.opt("dtype", "f32", "storage dtypes, comma separated: f32 f16 bf16 fixedM.N (fixed2.5 = Q2.5)")
      .opt("ber", "1e-5", "bit error rates, comma separated, each in [0, 1]")
      .opt("trials", "100", "trials per (dtype, BER); with --until-ci, the most")
      .opt("until-ci", "", "stop a (dtype, BER) at the first trial count whose 95% CI half-width of the mean top-1 is <= this many points")
      .opt("min-trials", "10", "with --until-ci: trials before any stop")
      .opt("seed", "0", "campaign seed")
      .opt("fault", "flip", "fault model: flip (transient) stuck0 stuck1")
      .opt("bits", "all", "bit positions: all, sign, exponent, mantissa (fixed: sign integer fraction), N, N-M")
      .opt("layers", "conv,linear", "layer kinds whose weights are stored in the faulty memory")
      .flag("biases", "also store linear biases in the faulty memory")
      .flag("batchnorm", "also store batch-norm weights and biases in the faulty memory")
      .opt("params", "*", "only parameters whose name matches this glob, e.g. 'layer3.*'")
      .opt("shard", "0/1",
           "run shard k of n (trial t belongs to shard t % n; not with --until-ci); slurm or slurm/N: the Slurm "
           "array task's shard, written to OUT.shard-k-of-n.EXT")
      .opt("batch", "256", "evaluation batch size")
      .opt("prefix-cache", "1024",
           "MiB (on the trials' device) for the clean activations where target layers start, so a trial "
           "recomputes only from its first faulty layer (bit-identical to a full run); 0: off")
      .opt("out", "", "results file, JSON lines (required unless --replay)")
      .opt("replay", "", "evaluate only this trial (needs one dtype and one BER)")
      .flag("list-flips", "with --replay: print every flipped bit")
      .opt("pending-shards", "",
           "N: for each of N shards, print its results file (as --shard slurm/N names it) and how many of its "
           "trials are still to run, then exit")
      .flag("per-layer", "after the campaign: the top-1 lost per target tensor, fitted over the trials' flip sites")
      .opt("per-layer-svg", "", "with --per-layer: write the per-tensor bar chart here")
      .flag("verify-sampler",
            "the device hands back every trial's flip sites and the run stops where they differ from the host "
            "sampler's (slower on a GPU: a copy and synchronisations per trial)")
      .flag("allow-mixed-devices", "add to a results file whose trials ran on another kind of device or with another --math")
      .opt("trials-in-flight", "0",
           "on a GPU: trials run side by side, each on its own stream and recorded graph (0: as many as half of "
           "the free device memory holds, at most 8); with --until-ci or --verify-sampler one at a time")
      .flag("quiet", "no progress line");
  add_device_flag(a);
  add_nan_logits_flag(a);
  if (!a.parse(argc, argv, 2)) return 0;
  a.require({"checkpoint"});
  const bool replay = a.has("replay");
  if (!replay && !a.has("out")) fail("--out FILE is required");

  CampaignConfig cfg;
  for (const auto& s : a.list("dtype")) cfg.dtypes.push_back(DType::parse(s));
  cfg.bers = parse_ber_list(a.str("ber"));
  cfg.trials = a.integer("trials");
  cfg.seed = static_cast<std::uint64_t>(a.integer("seed"));
  cfg.model = parse_fault_model(a.str("fault"));
  cfg.targets = parse_targets(a);
  cfg.bits = a.str("bits");
  cfg.shard = parse_shard(a.str("shard"));
  // A Slurm array task writes a file of its own, named after its shard, so one command serves all.
  const std::string out_path =
      shard_from_slurm(a.str("shard")) && a.has("out") ? shard_results_path(a.str("out"), cfg.shard) : a.str("out");
  if (a.has("until-ci")) {
    cfg.until_ci = a.number("until-ci");
    if (!(cfg.until_ci > 0)) fail("--until-ci must be a width in percentage points > 0, got ", a.str("until-ci"));
    cfg.min_trials = a.integer("min-trials");
  } else if (a.has("min-trials")) {
    fail("--min-trials goes with --until-ci");
  }
  cfg.batch = static_cast<int>(a.integer("batch"));
  if (cfg.batch < 1) fail("--batch must be >= 1");
  const std::int64_t threads = a.integer("threads");
  if (threads < 0) fail("--threads must be >= 0");
  cfg.threads = threads > 0 ? static_cast<int>(threads) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cfg.prefix_cache_mib = a.number("prefix-cache");
  if (!(cfg.prefix_cache_mib >= 0) || !std::isfinite(cfg.prefix_cache_mib))
    fail("--prefix-cache must be a number of MiB >= 0, got ", a.str("prefix-cache"));
  cfg.verify_sampler = a.on("verify-sampler");
  const std::int64_t in_flight = a.integer("trials-in-flight");
  if (in_flight < 0 || in_flight > 1024) fail("--trials-in-flight must be 0 (automatic) or 1..1024, got ", in_flight);
  cfg.trials_in_flight = static_cast<int>(in_flight);
  cfg.allow_mixed_devices = a.on("allow-mixed-devices");
  cfg.quiet = a.on("quiet");
  cfg.nan_logits = parse_nan_logits(a.str("nan-logits"));
  Backend& backend = backend_from_flags(a, cfg.quiet);

  const std::string ckpt_path = a.str("checkpoint");
  const std::vector<std::uint8_t> bytes = read_file(ckpt_path);
  Checkpoint ck = load_checkpoint(ckpt_path);
  const std::string ck_arch = ck.model.arch, ck_saf = saf_display_name(ck.model.saf);
  const std::string dataset = checkpoint_dataset(a, ck);
  const Dataset test = load_split(a, Split::test, dataset);
  if (test.channels != ck.model.in_channels || test.height != ck.model.height || test.classes != ck.model.classes)
    fail(ckpt_path, ": model input/classes do not match data set ", dataset);
  Campaign campaign(std::move(ck), fnv1a_hex(bytes.data(), bytes.size()), dataset, a.integer("limit"),
                    make_eval_set(test, default_normalization(dataset)), cfg, backend);

  if (replay) {
    if (cfg.dtypes.size() != 1 || cfg.bers.size() != 1) fail("--replay needs exactly one --dtype and one --ber");
    const std::int64_t trial = a.integer("replay");
    if (trial < 0) fail("--replay needs a trial number >= 0");
    apply_threads(a);
    std::vector<FlipReport> flips;
    const TrialRecord r = campaign.run_trial(cfg.dtypes[0], cfg.bers[0], trial, &flips);
    if (a.on("list-flips")) print_replay(flips, r, cfg.dtypes[0]);
    else std::printf("trial %lld: %lld flips, top1 %.2f%% top5 %.2f%% loss %.6g\n", static_cast<long long>(trial),
                     static_cast<long long>(r.flips), r.top1, r.top5, r.loss);
    if (a.has("out"))
      for (const TrialRecord& rec : read_results(out_path))
        if (rec.campaign == r.campaign && rec.dtype == r.dtype && rec.ber == r.ber && rec.trial == r.trial) {
          const bool same = same_result(rec, r);
          std::printf("%s: recorded trial %s\n", out_path.c_str(), same ? "matches" : "DIFFERS");
          return same ? 0 : 1;
        }
    return 0;
  }

  if (a.has("pending-shards")) {
    if (cfg.until_ci > 0) fail("--pending-shards: an --until-ci campaign cannot be sharded");
    const Shard all = parse_shard("0/" + a.str("pending-shards"));
    for (int k = 0; k < all.n; ++k) {
      const Shard shard{k, all.n};
      const std::string path = shard_results_path(a.str("out"), shard);
      std::vector<TrialRecord> existing;
      if (std::filesystem::exists(path))
        for (TrialRecord& r : read_results(path)) {
          if (r.campaign != campaign.id())
            fail(path, ": holds records of another campaign (id ", r.campaign, ", this one is ", campaign.id(),
                 "); use another --out");
          existing.push_back(std::move(r));
        }
      std::printf("%d\t%s\t%lld\n", k, path.c_str(), static_cast<long long>(campaign.pending(existing, shard)));
    }
    return 0;
  }
  ResultsWriter out(out_path, campaign.id());
  install_interrupt_handler();
  const std::string where = backend.parallel_callers() ? std::to_string(cfg.threads) + " CPU threads"
                                                      : backend.device().str();
  char until[96] = "";
  if (cfg.until_ci > 0)
    std::snprintf(until, sizeof until, " (until the CI95 half-width is <= %g, at least %lld)",
                  cfg.until_ci, static_cast<long long>(cfg.min_trials));
  std::fprintf(stderr, "campaign %s: %zu dtype(s) x %zu BER(s) x %s%lld trials%s (shard %d/%d) on %s -> %s\n",
               campaign.id().c_str(), cfg.dtypes.size(), cfg.bers.size(), cfg.until_ci > 0 ? "at most " : "",
               static_cast<long long>(cfg.trials), until, cfg.shard.k, cfg.shard.n, where.c_str(), out_path.c_str());
  const std::int64_t n = campaign.run(out);
  if (interrupted()) {
    std::fprintf(stderr, "interrupted: %lld records written; rerun the same command to resume\n",
                 static_cast<long long>(n));
    return 130;
  }
  std::fprintf(stderr, "%lld records written to %s\n", static_cast<long long>(n), out_path.c_str());
  if (a.on("per-layer") || a.has("per-layer-svg")) {
    const auto groups = per_layer_vulnerability(campaign, cfg.dtypes, cfg.bers, read_results(out_path));
    std::fputs(vulnerability_table(groups).c_str(), stdout);
    if (a.has("per-layer-svg")) {
      write_file_atomic(a.str("per-layer-svg"),
                        vulnerability_svg(groups, ck_arch + " " + ck_saf + ": top-1 lost per target tensor"));
      std::printf("wrote %s\n", a.str("per-layer-svg").c_str());
    }
  }
  print_device_peak(backend);
  return 0;
}

}  // namespace safnet
