// Fault campaigns: sampling, injection, evaluation and durable results, trials in parallel.
#include "app/campaign.h"

#include <fnmatch.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "host/check.h"
#include "host/faults/storage.h"
#include "host/saf.h"
#include "app/interrupt.h"
#include "app/progress.h"
#include "app/report.h"
#include "app/stored_model.h"
#include "app/trials_in_flight.h"

namespace safnet {

std::string fnv1a_hex(const void* data, std::size_t size) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  const auto* p = static_cast<const std::uint8_t*>(data);
  for (std::size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool FaultTargets::selects(const ParamInfo& p) const {
  if (fnmatch(pattern.c_str(), p.name.c_str(), 0) != 0) return false;
  bool layer_ok = false;
  for (const auto& l : layers) layer_ok = layer_ok || l == layer_kind_name(p.layer);
  if (!layer_ok) return false;
  switch (p.role) {
    case ParamRole::weight: return true;
    case ParamRole::bias: return biases;
    case ParamRole::bn_weight:
    case ParamRole::bn_bias: return batchnorm;
    default: return false;
  }
}

std::string FaultTargets::describe() const {
  std::string s = "layers=";
  for (std::size_t i = 0; i < layers.size(); ++i) s += (i ? "," : "") + layers[i];
  return s + " biases=" + (biases ? "1" : "0") + " batchnorm=" + (batchnorm ? "1" : "0") + " pattern=" + pattern;
}

namespace {

std::string saf_label(const Saf& s) {
  if (s.kind != SafKind::tanh_c) return saf_name(s.kind);
  char buf[32];
  std::snprintf(buf, sizeof buf, "tanh_c%g", static_cast<double>(s.c));
  return buf;
}

// "cpu", "cuda" or "sim", as records name it: a card's index says nothing about its results.
std::string device_kind(const Device& d) {
  switch (d.kind) {
    case DeviceKind::cpu: return "cpu";
    case DeviceKind::cuda: return "cuda";
    case DeviceKind::sim: return "sim";
  }
  return "?";
}

std::uint64_t load_word(const std::uint8_t* p, std::size_t size) {
  std::uint64_t w = 0;
  for (std::size_t i = 0; i < size; ++i) w |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return w;
}

// The work of each node of a forward graph: multiply-accumulates for conv2d and linear (output
// elements x weight elements / output channels), output elements for every other node.
std::vector<double> node_work(const Graph& g) {
  std::vector<double> work;
  for (const Node& n : g.nodes()) {
    double w = 0;
    for (ValueId v : n.out) w += static_cast<double>(shape_numel(g.value(v).shape));
    if (n.op == Op::conv2d || n.op == Op::linear) {
      const Shape& ws = g.value(n.in[1]).shape;
      w = static_cast<double>(shape_numel(g.value(n.out[0]).shape)) * static_cast<double>(shape_numel(ws)) /
          static_cast<double>(std::max<std::int64_t>(1, ws[0]));
    }
    work.push_back(w);
  }
  return work;
}


// The golden prefix of the campaign: per dtype, a cache of the clean activations at chosen node
// positions, built once by the first worker that needs it and shared read-only by all; building
// one drops the others (their trials in flight keep theirs until they finish). Guarded by the
// campaign's lock.
struct Prefix {
  enum class State { none, building, ready, dropped };
  struct Entry {
    State state = State::none;
    std::shared_ptr<const PrefixCache> cache;
  };
  std::map<std::string, Entry> by_dtype;
  std::vector<std::size_t> reader;  // per target slice: the first node position reading it
  std::vector<double> before;       // work of nodes [0, p), for p in [0, nodes]
};

// Per-thread state: the stored model of each dtype, whose words each trial restores and faults,
// and an evaluator with its own activations.
struct Worker {
  Worker(const Checkpoint& ck, const std::vector<TargetSlice>& slices, const CampaignConfig& cfg, Backend& backend)
      : ck(ck), slices(slices), backend(backend), eval(ck.model, cfg.batch, backend, cfg.nan_logits, cfg.quiet) {}
  StoredModel& stored(DType dt) {
    auto& slot = by_dtype[dt.name()];
    if (!slot) slot = std::make_unique<StoredModel>(ck.params, slices, dt, backend);
    return *slot;
  }
  const Checkpoint& ck;
  const std::vector<TargetSlice>& slices;
  Backend& backend;
  Evaluator eval;
  std::map<std::string, std::unique_ptr<StoredModel>> by_dtype;
};

}  // namespace

std::vector<std::size_t> choose_prefix_positions(const std::vector<std::size_t>& reader, const std::vector<double>& bits,
                                                 const std::vector<double>& bers, const std::vector<double>& before,
                                                 const std::function<double(std::size_t)>& bytes, double budget,
                                                 double trials) {
  const std::size_t nodes = before.size() - 1;
  std::map<std::size_t, double> bits_at;  // reader -> target bits first read there
  for (std::size_t i = 0; i < reader.size(); ++i) bits_at[reader[i]] += bits[i];
  std::map<std::size_t, double> first;    // reader -> P(it is the first faulty one)
  for (const double ber : bers) {
    double none_before = 1;
    for (const auto& [f, b] : bits_at) {
      const double none_here = b > 0 ? std::exp(b * std::log1p(-std::min(ber, 1.0))) : 1.0;
      first[f] += none_before * (1 - none_here) / static_cast<double>(bers.size());
      none_before *= none_here;
    }
  }
  std::vector<std::size_t> candidates;
  std::map<std::size_t, double> size;
  double all_bytes = 0;
  for (const auto& [f, b] : bits_at)
    if (f < nodes && before[f] > 0) {
      candidates.push_back(f);
      all_bytes += size[f] = bytes(f);
    }
  std::set<std::size_t> chosen;
  if (all_bytes <= budget) chosen.insert(candidates.begin(), candidates.end());
  double left = all_bytes <= budget ? 0.0 : budget;
  while (all_bytes > budget) {
    std::size_t best = nodes;
    double best_ratio = 0;
    for (const std::size_t c : candidates) {
      if (chosen.count(c) || size[c] > left) continue;
      auto next = chosen.upper_bound(c);
      const double prev = next == chosen.begin() ? 0.0 : before[*std::prev(next)];
      const std::size_t until = next == chosen.end() ? nodes + 1 : *next;
      double p = 0;
      for (auto it = first.lower_bound(c); it != first.end() && it->first < until; ++it) p += it->second;
      const double ratio = p * (before[c] - prev) / std::max(1.0, size[c]);
      if (ratio > best_ratio) {
        best_ratio = ratio;
        best = c;
      }
    }
    if (best == nodes) break;
    chosen.insert(best);
    left -= size[best];
  }
  const std::vector<std::size_t> sorted(chosen.begin(), chosen.end());
  double best_net = 0;
  std::size_t keep = 0;
  for (std::size_t cut = 1; cut <= sorted.size(); ++cut) {
    double saved = 0;  // expected work saved per trial by positions sorted[0, cut)
    for (const auto& [f, p] : first) {
      const auto at = std::upper_bound(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(cut), f);
      if (at != sorted.begin()) saved += p * before[*std::prev(at)];
    }
    const double net = trials * saved - before[sorted[cut - 1]];
    if (net > best_net) {
      best_net = net;
      keep = cut;
    }
  }
  return {sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(keep)};
}

Campaign::Campaign(Checkpoint ck, std::string checkpoint_id, std::string dataset, std::int64_t limit, EvalSet data,
                   CampaignConfig cfg, Backend& backend)
    : ck_(std::move(ck)), dataset_(std::move(dataset)), data_(std::move(data)), cfg_(std::move(cfg)), backend_(backend) {
  if (cfg_.dtypes.empty()) fail("a campaign needs at least one dtype");
  if (cfg_.bers.empty()) fail("a campaign needs at least one BER");
  if (cfg_.trials < 0) fail("--trials must be >= 0");
  if (!std::isfinite(cfg_.until_ci) || cfg_.until_ci < 0)
    fail("--until-ci must be a width in percentage points > 0, got ", cfg_.until_ci);
  if (!std::isfinite(cfg_.prefix_cache_mib) || cfg_.prefix_cache_mib < 0)
    fail("--prefix-cache must be a number of MiB >= 0, got ", cfg_.prefix_cache_mib);
  if (cfg_.until_ci > 0) {
    if (cfg_.min_trials < 2) fail("--min-trials must be >= 2 (a confidence interval needs two trials)");
    if (cfg_.shard.n != 1)
      fail("--until-ci cannot run with --shard ", cfg_.shard.k, "/", cfg_.shard.n,
           ": its stop rule decides each (dtype, BER) over the cell's trials in index order, so one run must hold "
           "them all; drop --shard, or use a fixed --trials to shard");
  }
  for (DType dt : cfg_.dtypes) {
    if (!dt.is_float_storage()) fail("dtype ", dt.name(), " cannot hold weights (valid: f32 f16 bf16 fixedM.N)");
    parse_bit_positions(cfg_.bits, dt);  // rejects bits outside the word before any work
  }
  bool any = false;
  for (const ParamInfo& p : ck_.params.all()) any = any || cfg_.targets.selects(p);
  if (!any) fail("no parameter matches the fault targets (", cfg_.targets.describe(), ")");
  const std::string defn = "checkpoint=" + checkpoint_id + " model=" + ck_.model.arch + " saf=" + saf_label(ck_.model.saf) +
                           " nan=" + nan_mode_name(ck_.model.saf.nan) + " dataset=" + dataset_ +
                           " limit=" + std::to_string(limit) + " fault=" + fault_model_name(cfg_.model) +
                           " targets=" + cfg_.targets.describe() + " bits=" + cfg_.bits +
                           " seed=" + std::to_string(cfg_.seed) + " logits=" + nan_logits_name(cfg_.nan_logits);
  id_ = fnv1a_hex(defn.data(), defn.size());
  slices_ = target_slices(ck_.params, weight_safs(ck_.model), [&](const ParamInfo& p) { return cfg_.targets.selects(p); });
}

std::vector<FlipSite> Campaign::sample(DType dtype, double ber, std::int64_t trial) const {
  return trial >= 0 ? sample_flips(cfg_.seed, static_cast<std::uint64_t>(trial), spec(dtype, ber))
                    : std::vector<FlipSite>{};
}

FlipSpec Campaign::spec(DType dtype, double ber) const {
  FlipSpec spec;
  const auto& sl = slices_;
  spec.words = sl.empty() ? 0 : sl.back().first_word + sl.back().words;
  spec.word_bits = dtype.bits();
  spec.bit_mask = parse_bit_positions(cfg_.bits, dtype);
  spec.ber = ber;
  return spec;
}

TrialRecord Campaign::base_record(DType dtype, double ber, std::int64_t trial) const {
  TrialRecord r;
  r.campaign = id_;
  r.model = ck_.model.arch;
  r.saf = saf_label(ck_.model.saf);
  r.dtype = dtype.name();
  r.ber = ber;
  r.trial = trial;
  r.seed = cfg_.seed;
  r.device = device_kind(backend_.device());
  r.math = math_mode_name(backend_.math_mode());
  return r;
}

namespace {

// The record's flip count and non-finite weights, and the replay report, from the host's sites
// and the clean words of `sm`.
void summarize_faults(const StoredModel& sm, DType dtype, const std::vector<FlipSite>& sites, FaultModel model,
                      TrialRecord& rec, std::vector<FlipReport>* report) {
  const std::size_t ws = dtype.size();
  const std::vector<TargetSlice>& slices = sm.slices();
  const std::uint8_t* clean = sm.clean_words().data<std::uint8_t>();
  std::map<std::int64_t, std::uint64_t> faulty;  // word -> its value after the sites so far
  std::size_t s = 0;
  for (const FlipSite& site : sites) {
    while (site.word >= slices[s].first_word + slices[s].words) ++s;
    auto [it, fresh] = faulty.try_emplace(site.word, 0);
    if (fresh) it->second = load_word(clean + static_cast<std::size_t>(site.word) * ws, ws);
    const std::uint64_t before = it->second;
    apply_faults(reinterpret_cast<std::uint8_t*>(&it->second), static_cast<int>(ws), {FlipSite{0, site.bit}}, model);
    if (report) {
      FlipReport f;
      f.tensor = slices[s].name;
      f.index = site.word - slices[s].first_word;
      f.bit = site.bit;
      f.before = before;
      f.after = it->second;
      f.value_before = decode_word(reinterpret_cast<const std::uint8_t*>(&f.before), dtype);
      f.value_after = decode_word(reinterpret_cast<const std::uint8_t*>(&f.after), dtype);
      f.read_after = saf_value(slices[s].saf, static_cast<float>(f.value_after));
      report->push_back(f);
    }
  }
  rec.flips = static_cast<std::int64_t>(sites.size());
  for (const auto& [word, value] : faulty)
    if (!std::isfinite(decode_word(reinterpret_cast<const std::uint8_t*>(&value), dtype))) ++rec.nonfinite;
}

// Restores the stored words, injects one trial's faults on the backend (which samples them itself
// from the trial's seed and index; with `verify` it hands them back and must find exactly the
// host's sites), evaluates. The flip counts and the replay report come from the host's sites and
// clean words. With `cache`, the evaluation starts at its k-th position.
TrialRecord evaluate_trial(Worker& w, DType dtype, const std::vector<FlipSite>& sites, FaultModel model,
                           const FlipSpec& spec, const EvalSet& data, TrialRecord rec, std::vector<FlipReport>* report,
                           bool verify, const PrefixCache* cache = nullptr, std::size_t k = 0) {
  StoredModel& sm = w.stored(dtype);
  sm.restore();
  if (rec.trial >= 0 && !verify)
    w.backend.inject_sampled_faults(sm.words(), rec.seed, static_cast<std::uint64_t>(rec.trial), spec, model,
                                    static_cast<std::int64_t>(sites.size()));
  if (rec.trial >= 0 && verify) {
    const std::vector<FlipSite> injected =
        w.backend.inject_faults(sm.words(), rec.seed, static_cast<std::uint64_t>(rec.trial), spec, model);
    if (injected != sites)
      fail("trial ", rec.trial, " (", dtype.name(), ", ber ", rec.ber, "): ", w.backend.device().str(), " flipped ",
           injected.size(), " bits where the host sampler flips ", sites.size(), "; the samplers disagree");
  }
  sm.refresh();
  summarize_faults(sm, dtype, sites, model, rec, report);
  const Metrics m = cache ? w.eval.run_from(sm.params(), data, *cache, k) : w.eval.run(sm.params(), data);
  rec.top1 = m.top1;
  rec.top5 = m.top5;
  rec.loss = m.loss;
  rec.nonfinite_logits = m.nonfinite_logits;
  return rec;
}

// Builds the golden prefix cache of `dtype` in worker `w` (whose kernels run as the trials' do):
// chooses the positions under the budget and runs the clean stored model up to them. `stats`
// (under the lock) gets the cache's size for the run's summary.
std::shared_ptr<const PrefixCache> build_prefix(Worker& w, Prefix& prefix, std::mutex& mu, DType dtype,
                                                const CampaignConfig& cfg, const EvalSet& data, PrefixStats& stats) {
  StoredModel& sm = w.stored(dtype);
  sm.restore();
  sm.refresh();
  ModelPlan& plan = w.eval.plan(data);
  const Executor& ex = *plan.exec;
  std::vector<std::size_t> reader;
  std::vector<double> bits;
  const double mask_bits = static_cast<double>(std::popcount(parse_bit_positions(cfg.bits, dtype)));
  for (const TargetSlice& t : sm.slices()) {
    const ValueId v = plan.graph.find(t.name);
    reader.push_back(v < 0 ? 0 : ex.first_reader(v));  // unknown to the graph: no restart past it
    bits.push_back(static_cast<double>(t.words) * mask_bits);
  }
  std::vector<double> before{0};
  for (const double work : node_work(plan.graph)) before.push_back(before.back() + work);
  const std::int64_t n = std::max<std::int64_t>(1, std::min<std::int64_t>(cfg.batch, data.size()));
  auto bytes = [&](std::size_t pos) {
    double per_batch = 0;
    for (ValueId v : ex.live_across(pos)) per_batch += static_cast<double>(ex.get(v).nbytes());
    return per_batch / static_cast<double>(n) * static_cast<double>(data.size());
  };
  const std::vector<std::size_t> positions =
      choose_prefix_positions(reader, bits, cfg.bers, before, bytes, cfg.prefix_cache_mib * 1048576.0,
                              static_cast<double>(cfg.trials) * static_cast<double>(cfg.bers.size()));
  {
    std::lock_guard<std::mutex> lock(mu);
    if (prefix.reader.empty()) {  // the same for every dtype; read without the lock once a cache is out
      prefix.reader = reader;
      prefix.before = before;
    }
  }
  auto cache = std::make_shared<PrefixCache>(
      positions.empty() ? PrefixCache{} : w.eval.cache_prefix(sm.params(), data, positions));
  std::set<std::size_t> candidates;
  for (const std::size_t r : reader)
    if (r < ex.node_count() && before[r] > 0) candidates.insert(r);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s: %zu of %zu positions, %.1f MiB", dtype.name().c_str(), positions.size(),
                candidates.size(), static_cast<double>(cache->bytes()) / 1048576.0);
  std::lock_guard<std::mutex> lock(mu);
  stats.caches += (stats.caches.empty() ? "" : "; ") + std::string(buf);
  stats.positions = positions.size();
  stats.candidates = candidates.size();
  return cache;
}

}  // namespace

TrialRecord Campaign::run_trial(DType dtype, double ber, std::int64_t trial, std::vector<FlipReport>* flips) {
  Worker w(ck_, slices_, cfg_, backend_);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<FlipSite> sites = sample(dtype, ber, trial);
  TrialRecord r = evaluate_trial(w, dtype, sites, cfg_.model, spec(dtype, ber), data_, base_record(dtype, ber, trial),
                                 flips, true);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::int64_t Campaign::run(ResultsWriter& out) {
  // A cell is one (dtype, ber): the trials of this shard not yet in `out`, in index order, the
  // clean one (-1) first.
  struct Cell {
    std::size_t dtype = 0, ber = 0;
    std::vector<std::int64_t> todo;
    std::size_t started = 0;  // todo[0, started) handed to workers
    // With until_ci: the top-1 of trials 0..n-1, decided in order; finished trials past n wait in
    // `ready` (with those already in `out`: true).
    std::vector<double> top1;
    std::map<std::int64_t, std::pair<TrialRecord, bool>> ready;
    bool stopped = false;
  };
  // One file holds one kind of device and one math mode: their results may differ by a few images.
  const auto one_kind = [&](const std::set<std::string>& theirs, const std::string& ours, const char* ran,
                            const char* why) {
    for (const std::string& other : theirs)
      if (!other.empty() && other != ours && !cfg_.allow_mixed_devices)
        fail(out.path(), ": its trials ran ", ran, other, " and this run ", ran, ours, "; ", why,
             ": write another --out (safnet report takes several), or pass --allow-mixed-devices");
  };
  one_kind(out.devices(), device_kind(backend_.device()), "on ", "a GPU's tanhf is not glibc's");
  one_kind(out.maths(), math_mode_name(backend_.math_mode()), "with --math ", "their roundings differ");
  const bool until = cfg_.until_ci > 0;
  std::vector<Cell> cells;
  std::map<std::pair<std::string, double>, std::size_t> cell_of;
  std::int64_t total = 0, skipped = 0;
  for (std::size_t d = 0; d < cfg_.dtypes.size(); ++d)
    for (std::size_t b = 0; b < cfg_.bers.size(); ++b) {
      Cell& c = cells.emplace_back();
      c.dtype = d;
      c.ber = b;
      cell_of[{cfg_.dtypes[d].name(), cfg_.bers[b]}] = cells.size() - 1;
      for (std::int64_t t = -1; t < cfg_.trials; ++t) {
        if (!cfg_.shard.owns(t)) continue;
        if (out.done(cfg_.dtypes[d].name(), cfg_.bers[b], t)) ++skipped;
        else c.todo.push_back(t);
      }
      total += static_cast<std::int64_t>(c.todo.size());
    }
  if (skipped && !cfg_.quiet)
    std::fprintf(stderr, "resuming: %lld of %lld records already in %s\n", static_cast<long long>(skipped),
                 static_cast<long long>(skipped + total), out.path().c_str());
  // Trials run side by side, one per thread, each with single-threaded kernels: no nested
  // parallelism, and each trial's numbers do not depend on the thread count.
  const int threads = backend_.parallel_callers()
                          ? std::max(1, static_cast<int>(std::min<std::int64_t>(cfg_.threads, std::max<std::int64_t>(1, total))))
                          : 1;
  Progress progress("faults", total);
  std::atomic<std::int64_t> written{0};
  // With until_ci, under the lock: writes the cell's finished trials in index order while the next
  // one is there, deciding the stop after each; a cell that stops drops its later trials.
  auto decide = [&](Cell& c) {
    while (!c.stopped && !c.ready.empty() && c.ready.begin()->first == static_cast<std::int64_t>(c.top1.size())) {
      auto [r, recorded] = std::move(c.ready.begin()->second);
      c.ready.erase(c.ready.begin());
      c.top1.push_back(r.top1);
      const auto n = static_cast<std::int64_t>(c.top1.size());
      c.stopped = n >= cfg_.min_trials && n < cfg_.trials && ci95_half_width(c.top1) <= cfg_.until_ci;
      if (recorded) continue;
      if (c.stopped) {
        r.until_ci = cfg_.until_ci;
        r.min_trials = cfg_.min_trials;
        r.max_trials = cfg_.trials;
      }
      out.append(r);
      ++written;
    }
    if (!c.stopped) return;
    c.ready.clear();
    total -= c.todo.end() - std::lower_bound(c.todo.begin(), c.todo.end(), static_cast<std::int64_t>(c.top1.size()));
    progress.set_total(total);
  };
  if (until) {
    for (TrialRecord& r : read_results(out.path())) {
      auto it = cell_of.find({r.dtype, r.ber});
      if (r.trial >= 0 && it != cell_of.end()) cells[it->second].ready.emplace(r.trial, std::make_pair(std::move(r), true));
    }
    for (Cell& c : cells) decide(c);
  }
  // Past the minimum, a cell's trials start at most one per thread beyond its decided frontier, so
  // little work is thrown away when it stops.
  auto startable = [&](const Cell& c, std::int64_t t) {
    return !until || t < 0 ||
           (!c.stopped && t < std::max<std::int64_t>(cfg_.min_trials, static_cast<std::int64_t>(c.top1.size())) + threads);
  };
  auto all_started = [&] {
    for (const Cell& c : cells)
      if (c.started < c.todo.size() && !(until && c.stopped && c.todo[c.started] >= 0)) return false;
    return true;
  };
  // The clean result of each dtype, for trials whose sample flips nothing (an exact shortcut).
  std::map<std::string, TrialRecord> clean;
  std::mutex mu;
  Prefix prefix;
  prefix_stats_ = PrefixStats{};
  std::condition_variable wake;
  bool halt = false;
  std::exception_ptr error;
  // The golden prefix: a trial with flips restarts from the clean activations at the last cached
  // position at or before the first node reading a tensor it hits. The cache to start from (null:
  // the first node) and its position; counted in prefix_stats_.
  auto start_of = [&](Worker& w, DType dt, const std::vector<FlipSite>& sites)
      -> std::pair<std::shared_ptr<const PrefixCache>, std::size_t> {
    std::shared_ptr<const PrefixCache> cache;
    bool build = false;
    if (!sites.empty() && cfg_.prefix_cache_mib > 0) {
      std::lock_guard<std::mutex> lock(mu);
      Prefix::Entry& e = prefix.by_dtype[dt.name()];
      if (e.state == Prefix::State::ready) {
        cache = e.cache;
      } else if (e.state == Prefix::State::none) {
        e.state = Prefix::State::building;
        build = true;
        for (auto& [name, other] : prefix.by_dtype)
          if (&other != &e && (other.state == Prefix::State::ready || other.state == Prefix::State::building)) {
            other.state = Prefix::State::dropped;
            other.cache.reset();
          }
      }
    }
    if (build) {
      cache = build_prefix(w, prefix, mu, dt, cfg_, data_, prefix_stats_);
      std::lock_guard<std::mutex> lock(mu);
      Prefix::Entry& e = prefix.by_dtype[dt.name()];
      if (e.state == Prefix::State::building) {
        e.state = Prefix::State::ready;
        e.cache = cache;
      }
    }
    std::shared_ptr<const PrefixCache> from;
    std::size_t k = 0;
    if (cache && !cache->positions().empty()) {
      std::size_t first = prefix.before.size() - 1;  // no target read: the end
      for (const FlipSite& site : sites) {
        const auto sl = std::upper_bound(slices_.begin(), slices_.end(), site.word,
                                         [](std::int64_t word, const TargetSlice& t) { return word < t.first_word; });
        first = std::min(first, prefix.reader[static_cast<std::size_t>(sl - slices_.begin()) - 1]);
      }
      const auto& pos = cache->positions();
      const auto at = std::upper_bound(pos.begin(), pos.end(), first);
      if (at != pos.begin()) {
        k = static_cast<std::size_t>(at - pos.begin()) - 1;
        from = cache;
      }
    }
    if (!sites.empty()) {
      std::lock_guard<std::mutex> lock(mu);
      ++prefix_stats_.trials;
      if (from) {
        ++prefix_stats_.started_late;
        prefix_stats_.skipped_share += prefix.before[from->positions()[k]] / prefix.before.back();
      }
    }
    return {from, k};
  };
  auto work = [&] {
    omp_set_num_threads(1);
    Worker w(ck_, slices_, cfg_, backend_);
    try {
      for (;;) {
        Cell* cell = nullptr;
        std::int64_t trial = 0;
        {
          std::unique_lock<std::mutex> lock(mu);
          while (cell == nullptr) {
            if (halt || interrupted() || all_started()) return;
            for (Cell& c : cells)
              if (c.started < c.todo.size() && startable(c, c.todo[c.started])) {
                cell = &c;
                trial = c.todo[c.started++];
                break;
              }
            if (cell == nullptr) wake.wait_for(lock, std::chrono::milliseconds(100));  // polls interrupted()
          }
        }
        const DType dt = cfg_.dtypes[cell->dtype];
        const double ber = cfg_.bers[cell->ber];
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<FlipSite> sites = sample(dt, ber, trial);
        TrialRecord r = base_record(dt, ber, trial);
        bool reused = false;
        if (sites.empty()) {
          std::lock_guard<std::mutex> lock(mu);
          auto c = clean.find(dt.name());
          if (c != clean.end()) {
            r.top1 = c->second.top1;
            r.top5 = c->second.top5;
            r.loss = c->second.loss;
            r.nonfinite_logits = c->second.nonfinite_logits;
            reused = true;
          }
        }
        if (!reused) {
          const auto [from, k] = start_of(w, dt, sites);
          r = evaluate_trial(w, dt, sites, cfg_.model, spec(dt, ber), data_, r, nullptr, cfg_.verify_sampler,
                             from.get(), k);
        }
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (sites.empty() && !reused) {
          std::lock_guard<std::mutex> lock(mu);
          clean.emplace(dt.name(), r);
        }
        if (!until || trial < 0) {
          out.append(r);
          ++written;
        }
        std::lock_guard<std::mutex> lock(mu);
        if (until && trial >= 0 && !cell->stopped) {
          cell->ready.emplace(trial, std::make_pair(r, false));
          decide(*cell);
          wake.notify_all();
        }
        if (!cfg_.quiet) {
          char detail[96];
          std::snprintf(detail, sizeof detail, "[%s ber %g trial %lld: top1 %.2f%%]", r.dtype.c_str(), r.ber,
                        static_cast<long long>(r.trial), r.top1);
          progress.update(written, detail);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
      halt = true;
      wake.notify_all();
    }
  };
  // On a device with lanes: trials in flight, a group at a time (app/trials_in_flight.h); the clean
  // trial and those whose sample is empty run as in work(). False, before any trial ran, when the
  // test split is held in chunks (a recording cannot upload them).
  auto fly = [&] {
    Worker w(ck_, slices_, cfg_, backend_);
    if (!w.eval.prepare(data_)) return false;
    std::unique_ptr<TrialSlots> slots;
    struct Waiting {
      FlightTrial t;
      TrialRecord r;
    };
    std::vector<Waiting> group, flying;  // being gathered; launched and not yet collected
    auto finish = [&](const TrialRecord& r) {
      out.append(r);
      ++written;
      if (!cfg_.quiet) {
        char detail[96];
        std::snprintf(detail, sizeof detail, "[%s ber %g trial %lld: top1 %.2f%%]", r.dtype.c_str(), r.ber,
                      static_cast<long long>(r.trial), r.top1);
        progress.update(written, detail);
      }
    };
    // The host samples the next group while the device runs the one launched; a trial's seconds
    // are its group's, from launch to metrics, shared out.
    auto launched = std::chrono::steady_clock::now();
    auto collect = [&] {
      if (flying.empty()) return;
      const std::vector<Metrics> m = slots->collect();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - launched).count() /
                             static_cast<double>(flying.size());
      for (std::size_t i = 0; i < flying.size(); ++i) {
        TrialRecord& r = flying[i].r;
        r.top1 = m[i].top1;
        r.top5 = m[i].top5;
        r.loss = m[i].loss;
        r.nonfinite_logits = m[i].nonfinite_logits;
        r.seconds = seconds;
        finish(r);
      }
      flying.clear();
    };
    auto flush = [&] {
      if (group.empty()) return;
      collect();
      std::vector<FlightTrial> trials;
      for (const Waiting& g : group) trials.push_back(g.t);
      launched = std::chrono::steady_clock::now();
      slots->launch(trials);
      flying = std::move(group);
      group.clear();
    };
    for (const Cell& c : cells)
      for (const std::int64_t trial : c.todo) {
        if (interrupted()) break;
        const DType dt = cfg_.dtypes[c.dtype];
        const double ber = cfg_.bers[c.ber];
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<FlipSite> sites = sample(dt, ber, trial);
        TrialRecord r = base_record(dt, ber, trial);
        if (sites.empty()) {
          auto it = clean.find(dt.name());
          if (it == clean.end()) {
            r = evaluate_trial(w, dt, sites, cfg_.model, spec(dt, ber), data_, r, nullptr, false);
            it = clean.emplace(dt.name(), r).first;
          }
          r.top1 = it->second.top1;
          r.top5 = it->second.top5;
          r.loss = it->second.loss;
          r.nonfinite_logits = it->second.nonfinite_logits;
          r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          finish(r);
          continue;
        }
        if (!slots) {
          slots = std::make_unique<TrialSlots>(ck_, slices_, ck_.model, cfg_.batch, cfg_.nan_logits, cfg_.seed,
                                               cfg_.model, backend_, data_, &w.eval);
          slots->resize(trials_in_flight(cfg_.trials_in_flight, slots->slot_bytes(), backend_.free_bytes(), total));
          if (!cfg_.quiet)
            std::fprintf(stderr, "%d trial%s in flight (%.1f MiB of device memory each)\n", slots->size(),
                         slots->size() == 1 ? "" : "s", static_cast<double>(slots->slot_bytes()) / 1048576.0);
        }
        const auto [from, k] = start_of(w, dt, sites);
        summarize_faults(w.stored(dt), dt, sites, cfg_.model, r, nullptr);
        group.push_back(Waiting{FlightTrial{dt, ber, trial, spec(dt, ber), static_cast<std::int64_t>(sites.size()), from, k}, r});
        if (static_cast<int>(group.size()) == slots->size()) flush();
      }
    flush();
    collect();
    return true;
  };
  const bool in_flight = !backend_.device().is_cpu() && !until && !cfg_.verify_sampler;
  if (!in_flight || !fly()) {
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
  }
  if (!cfg_.quiet && total > 0) progress.finish();
  const PrefixStats& ps = prefix_stats_;
  if (!cfg_.quiet && cfg_.prefix_cache_mib > 0 && ps.trials > 0)
    std::fprintf(stderr,
                 "golden prefix: %lld of %lld trials with flips started past the first layer, skipping %.1f%% of the "
                 "network's work on average (%s)\n",
                 static_cast<long long>(ps.started_late), static_cast<long long>(ps.trials),
                 ps.started_late ? 100.0 * ps.skipped_share / static_cast<double>(ps.started_late) : 0.0,
                 ps.caches.c_str());
  return written;
}

std::unique_ptr<StoredModel> Campaign::faulty_model(DType dtype, double ber, std::int64_t trial) const {
  auto sm = std::make_unique<StoredModel>(ck_.params, slices_, dtype, backend_);
  if (trial >= 0) backend_.inject_faults(sm->words(), cfg_.seed, static_cast<std::uint64_t>(trial), spec(dtype, ber), cfg_.model);
  sm->refresh();
  return sm;
}

std::int64_t Campaign::pending(const std::vector<TrialRecord>& existing, Shard shard) const {
  std::set<std::tuple<std::string, double, std::int64_t>> done;
  for (const TrialRecord& r : existing) done.emplace(r.dtype, r.ber, r.trial);
  std::int64_t n = 0;
  for (const DType& d : cfg_.dtypes)
    for (const double ber : cfg_.bers)
      for (std::int64_t t = -1; t < cfg_.trials; ++t)
        if (shard.owns(t) && !done.count({d.name(), ber, t})) ++n;
  return n;
}

}  // namespace safnet
