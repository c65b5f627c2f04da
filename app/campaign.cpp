// Fault campaigns: sampling, injection, evaluation and durable results, trials in parallel.
#include "app/campaign.h"

#include <fnmatch.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
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

std::uint64_t load_word(const std::uint8_t* p, std::size_t size) {
  std::uint64_t w = 0;
  for (std::size_t i = 0; i < size; ++i) w |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return w;
}

// Per-thread state: the stored model of each dtype, whose words each trial restores and faults,
// and an evaluator with its own activations.
struct Worker {
  Worker(const Checkpoint& ck, const std::vector<TargetSlice>& slices, const CampaignConfig& cfg, Backend& backend)
      : ck(ck), slices(slices), backend(backend), eval(ck.model, cfg.batch, backend, cfg.nan_logits) {}
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

Campaign::Campaign(Checkpoint ck, std::string checkpoint_id, std::string dataset, std::int64_t limit, EvalSet data,
                   CampaignConfig cfg, Backend& backend)
    : ck_(std::move(ck)), dataset_(std::move(dataset)), data_(std::move(data)), cfg_(std::move(cfg)), backend_(backend) {
  if (cfg_.dtypes.empty()) fail("a campaign needs at least one dtype");
  if (cfg_.bers.empty()) fail("a campaign needs at least one BER");
  if (cfg_.trials < 0) fail("--trials must be >= 0");
  if (!std::isfinite(cfg_.until_ci) || cfg_.until_ci < 0)
    fail("--until-ci must be a width in percentage points > 0, got ", cfg_.until_ci);
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
  return r;
}

namespace {

// Restores the stored words, injects one trial's faults on the backend (which samples them itself
// from the trial's seed and index and must find exactly the host's sites), evaluates. The flip
// counts and the replay report come from the host's sites and clean words.
TrialRecord evaluate_trial(Worker& w, DType dtype, const std::vector<FlipSite>& sites, FaultModel model,
                           const FlipSpec& spec, const EvalSet& data, TrialRecord rec, std::vector<FlipReport>* report) {
  StoredModel& sm = w.stored(dtype);
  sm.restore();
  if (rec.trial >= 0) {
    const std::vector<FlipSite> injected =
        w.backend.inject_faults(sm.words(), rec.seed, static_cast<std::uint64_t>(rec.trial), spec, model);
    if (injected != sites)
      fail("trial ", rec.trial, " (", dtype.name(), ", ber ", rec.ber, "): ", w.backend.device().str(), " flipped ",
           injected.size(), " bits where the host sampler flips ", sites.size(), "; the samplers disagree");
  }
  sm.refresh();
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
  const Metrics m = w.eval.run(sm.params(), data);
  rec.top1 = m.top1;
  rec.top5 = m.top5;
  rec.loss = m.loss;
  rec.nonfinite_logits = m.nonfinite_logits;
  return rec;
}

}  // namespace

TrialRecord Campaign::run_trial(DType dtype, double ber, std::int64_t trial, std::vector<FlipReport>* flips) {
  Worker w(ck_, slices_, cfg_, backend_);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<FlipSite> sites = sample(dtype, ber, trial);
  TrialRecord r = evaluate_trial(w, dtype, sites, cfg_.model, spec(dtype, ber), data_, base_record(dtype, ber, trial),
                                 flips);
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
  std::condition_variable wake;
  bool halt = false;
  std::exception_ptr error;
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
        if (!reused) r = evaluate_trial(w, dt, sites, cfg_.model, spec(dt, ber), data_, r, nullptr);
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
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  if (!cfg_.quiet && total > 0) progress.finish();
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
