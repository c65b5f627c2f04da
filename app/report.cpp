// Campaign reports: statistics per (model, saf, dtype, ber) and their table, CSV and plot.
#include "app/report.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "host/check.h"
#include "app/svg_plot.h"

namespace safnet {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

int dtype_rank(const std::string& d) {
  if (d == "f32") return 0;
  if (d == "f16") return 1;
  if (d == "bf16") return 2;
  if (d.rfind("fixed", 0) == 0) return 3;
  return 4;
}

int saf_rank(const std::string& s) {
  if (s == "none") return 0;
  if (s == "tanh") return 1;
  if (s.rfind("tanh_c", 0) == 0) return 2;
  if (s == "softsign") return 3;
  if (s.rfind("arctan", 0) == 0) return 4;
  return 5;
}

// Within a datatype, the SAFs at one BER sit together, as each block of the paper's Table I.
using GroupKey = std::tuple<std::string, int, std::string, double, int, std::string, std::string>;
GroupKey group_key(const TrialRecord& r, bool by_device) {
  return {r.model,         dtype_rank(r.dtype), r.dtype, r.ber, saf_rank(r.saf), r.saf,
          by_device ? (r.device.empty() ? "unknown" : ran_on(r)) : ""};
}

// Whether the records name more than one kind of device or math mode: then a GPU's rows and the
// CPU's, which may differ by a few images, are reported apart.
bool mixes_devices(const std::vector<TrialRecord>& records) {
  std::set<std::string> kinds;
  for (const TrialRecord& r : records)
    if (!r.device.empty()) kinds.insert(ran_on(r));
  return kinds.size() > 1;
}

// Regularized incomplete beta I_x(a, b) by its continued fraction (DLMF 8.17.22), evaluated
// with the modified Lentz method; y = 1 - x is passed separately to keep its precision.
double incomplete_beta(double a, double b, double x, double y) {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - incomplete_beta(b, a, y, x);
  const double log_front =
      a * std::log(x) + b * std::log(y) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
  const double tiny = 1e-300;
  double f = 1, c = 1, d = 0;
  for (int i = 0; i <= 400; ++i) {
    const int m = i / 2;
    double num;
    if (i == 0)
      num = 1;
    else if (i % 2 == 0)
      num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    else
      num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + num * d;
    if (std::fabs(d) < tiny) d = tiny;
    d = 1 / d;
    c = 1 + num / c;
    if (std::fabs(c) < tiny) c = tiny;
    const double cd = c * d;
    f *= cd;
    if (std::fabs(1 - cd) < 1e-16) break;
  }
  return std::exp(log_front) * (f - 1) / a;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? kNaN : s / static_cast<double>(v.size());
}

// Sum of squared deviations, two-pass so large means do not cancel the spread.
double sum_sq_dev(const std::vector<double>& v, double mean) {
  double s = 0;
  for (double x : v) s += (x - mean) * (x - mean);
  return s;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// 1e-05 -> "1e-5", 2.5e-05 -> "2.5e-5": short and unambiguous in a table.
std::string fmt_ber(double ber) {
  if (ber == 0) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3e", ber);
  std::string s = buf;
  const auto e = s.find('e');
  std::string mant = s.substr(0, e), exp = s.substr(e + 1);
  while (mant.back() == '0') mant.pop_back();
  if (mant.back() == '.') mant.pop_back();
  const bool neg = exp[0] == '-';
  exp = exp.substr(1);
  while (exp.size() > 1 && exp[0] == '0') exp.erase(0, 1);
  return mant + "e" + (neg ? "-" : "") + exp;
}

std::string shortest(double v) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

// "stopped at 37 of 1000 trials: CI95 half-width 0.98 <= 1.00 (min 10 trials)", in as many
// decimals as the rule's width needs (at least 2).
std::string stop_reason(const GroupSummary& g) {
  int digits = 2;
  while (digits < 6 && std::fabs(g.until_ci * std::pow(10.0, digits) - std::round(g.until_ci * std::pow(10.0, digits))) > 1e-6)
    ++digits;
  return "stopped at " + std::to_string(g.trials) + " of " + std::to_string(g.max_trials) +
         " trials: CI95 half-width " + fixed(g.top1_ci_half, digits) + " <= " + fixed(g.until_ci, digits) +
         " (min " + std::to_string(g.min_trials) + " trials)";
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Markdown cells: a '|' would split the cell, a newline the row.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

}  // namespace

double ci95_half_width(const std::vector<double>& values) {
  if (values.size() < 2) return kNaN;
  const double n = static_cast<double>(values.size());
  const double s = std::sqrt(sum_sq_dev(values, mean_of(values)) / (n - 1));
  return student_t_quantile(0.975, n - 1) * s / std::sqrt(n);
}

double student_t_cdf(double t, double dof) {
  if (!(dof > 0)) fail("student t: degrees of freedom must be > 0, got ", dof);
  if (std::isnan(t)) return kNaN;
  if (std::isinf(t)) return t > 0 ? 1 : 0;
  // P(|T| > |t|) = I_{dof/(dof+t^2)}(dof/2, 1/2).
  const double t2 = t * t;
  const double tail = 0.5 * incomplete_beta(dof / 2, 0.5, dof / (dof + t2), t2 / (dof + t2));
  return t >= 0 ? 1 - tail : tail;
}

double student_t_quantile(double p, double dof) {
  if (!(p > 0 && p < 1)) fail("student t quantile: p must be in (0, 1), got ", p);
  if (!(dof > 0)) fail("student t: degrees of freedom must be > 0, got ", dof);
  if (p == 0.5) return 0;
  if (p < 0.5) return -student_t_quantile(1 - p, dof);
  double lo = 0, hi = 1;
  while (student_t_cdf(hi, dof) < p) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) return std::numeric_limits<double>::infinity();
  }
  // The cdf is monotone, so bisection is sure; 200 halvings exhaust double precision.
  for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, dof) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

std::string display_dtype(const std::string& d) {
  if (d == "f32") return "FP32";
  if (d == "f16") return "FP16";
  if (d == "bf16") return "BF16";
  if (d.rfind("fixed", 0) == 0 && d.size() > 5) return "Q" + d.substr(5);
  return d;
}

std::string display_saf(const std::string& s) {
  if (s.rfind("tanh_c", 0) == 0) {
    std::string c = s.substr(6);
    if (!c.empty() && (c[0] == '=' || c[0] == ':')) c.erase(0, 1);
    return c.empty() ? "Tanh_c" : "Tanh" + c;
  }
  if (s.empty()) return s;
  std::string out = s;
  if (out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

std::vector<GroupSummary> summarize(const std::vector<TrialRecord>& records) {
  std::map<GroupKey, std::map<std::int64_t, const TrialRecord*>> groups;
  std::map<GroupKey, const TrialRecord*> clean;
  std::deque<TrialRecord> joined;  // agreeing repeats that each knew something the other did not
  const bool by_device = mixes_devices(records);
  for (const TrialRecord& r : records) {
    validate_record(r, "report: record of " + r.model + "/" + r.saf + "/" + r.dtype);
    auto& slot = r.trial < 0 ? clean[group_key(r, by_device)] : groups[group_key(r, by_device)][r.trial];
    if (slot == nullptr) {
      slot = &r;
      continue;
    }
    if (slot->campaign != r.campaign)
      fail("report: ", r.model, " ", r.saf, " ", r.dtype, " ber ", r.ber,
           " has records of two campaigns (", slot->campaign, " and ", r.campaign,
           "); report them separately");
    if (!same_result(*slot, r))
      fail("report: ", r.model, " ", r.saf, " ", r.dtype, " ber ", r.ber, " trial ", r.trial,
           " appears twice with different results");
    TrialRecord both = *slot;
    absorb_duplicate(both, r);
    if (both.nonfinite_logits != slot->nonfinite_logits || both.stopped_cell() != slot->stopped_cell())
      slot = &joined.emplace_back(std::move(both));
  }
  std::vector<GroupSummary> out;
  for (const auto& [key, trials] : groups) {
    const TrialRecord& first = *trials.begin()->second;
    GroupSummary g;
    g.campaign = first.campaign;
    g.model = first.model;
    g.saf = first.saf;
    g.dtype = first.dtype;
    g.ber = first.ber;
    g.device = std::get<6>(key);
    g.trials = static_cast<std::int64_t>(trials.size());
    std::vector<double> top1, top5, loss, flips, nonfinite, nonfinite_logits;
    for (const auto& [t, r] : trials) {
      if (r->campaign != g.campaign)
        fail("report: ", g.model, " ", g.saf, " ", g.dtype, " ber ", g.ber,
             " has records of two campaigns (", g.campaign, " and ", r->campaign,
             "); report them separately");
      top1.push_back(r->top1);
      top5.push_back(r->top5);
      if (std::isfinite(r->loss))
        loss.push_back(r->loss);
      else
        ++g.loss_nonfinite;
      flips.push_back(static_cast<double>(r->flips));
      nonfinite.push_back(static_cast<double>(r->nonfinite));
      if (r->nonfinite > 0) ++g.trials_with_nonfinite;
      if (r->nonfinite_logits >= 0) nonfinite_logits.push_back(static_cast<double>(r->nonfinite_logits));
      g.seconds_total += r->seconds;
    }
    const double n = static_cast<double>(g.trials);
    g.top1_mean = mean_of(top1);
    const double ss = sum_sq_dev(top1, g.top1_mean);
    g.top1_std = std::sqrt(ss / n);
    g.top1_ci_half = ci95_half_width(top1);
    if (g.trials >= 2) {
      g.top1_std_sample = std::sqrt(ss / (n - 1));
      g.top1_ci_lo = g.top1_mean - g.top1_ci_half;
      g.top1_ci_hi = g.top1_mean + g.top1_ci_half;
    } else {
      g.top1_std_sample = g.top1_ci_lo = g.top1_ci_hi = kNaN;
    }
    const TrialRecord& last = *trials.rbegin()->second;
    if (last.stopped_cell() && last.trial + 1 == g.trials) {
      g.until_ci = last.until_ci;
      g.min_trials = last.min_trials;
      g.max_trials = last.max_trials;
    }
    g.top5_mean = mean_of(top5);
    g.top5_std = std::sqrt(sum_sq_dev(top5, g.top5_mean) / n);
    g.loss_mean = mean_of(loss);
    g.flips_mean = mean_of(flips);
    g.nonfinite_mean = mean_of(nonfinite);
    g.nonfinite_logits_known = static_cast<std::int64_t>(nonfinite_logits.size());
    g.nonfinite_logits_mean = mean_of(nonfinite_logits);
    // Prefer the clean run recorded at this BER; a campaign may record it once (e.g. at BER 0).
    // Split by device, the clean run of the group's own device first.
    const TrialRecord* c = nullptr;
    if (auto it = clean.find(key); it != clean.end()) c = it->second;
    for (const bool same_device : {true, false})
      for (auto it = clean.begin(); c == nullptr && it != clean.end(); ++it) {
        const TrialRecord& r = *it->second;
        if (r.model == g.model && r.saf == g.saf && r.dtype == g.dtype && r.campaign == g.campaign &&
            (!same_device || std::get<6>(it->first) == g.device))
          c = &r;
      }
    if (c != nullptr) {
      if (c->campaign != g.campaign)
        fail("report: ", g.model, " ", g.saf, " ", g.dtype, " ber ", g.ber,
             " has its clean run from another campaign (", c->campaign, ")");
      g.clean_top1 = c->top1;
    }
    out.push_back(std::move(g));
  }
  return out;
}

namespace {

// Which kinds of device the trials ran on, when records say (files from before they did say nothing).
std::string devices_line(const std::vector<TrialRecord>& records) {
  std::map<std::string, std::int64_t> count;
  for (const TrialRecord& r : records)
    if (r.trial >= 0) ++count[r.device.empty() ? "unknown" : ran_on(r)];
  if (count.empty() || (count.size() == 1 && count.count("unknown"))) return "";
  std::string list;
  for (const auto& [device, n] : count)
    list += (list.empty() ? "" : ", ") + device + " (" + std::to_string(n) + (n == 1 ? " trial)" : " trials)");
  if (count.size() > 1 && mixes_devices(records))
    list += "; rows are split by device, whose accuracies may differ by a few images";
  return "\nRan on: " + list + "\n";
}

}  // namespace

std::string report_table(const std::vector<TrialRecord>& records) {
  const std::vector<GroupSummary> groups = summarize(records);
  if (groups.empty()) fail("report: no trial records (trial >= 0) to report");
  bool many_models = false;
  for (const GroupSummary& g : groups) many_models = many_models || g.model != groups[0].model;
  const bool devices = !groups[0].device.empty();
  std::string s;
  if (many_models) s += "| Model ";
  s += "| Datatype | SAF | BER | ";
  if (devices) s += "Device | ";
  s += "Top-1 (%) | After Top-1 (%) | 95% CI | trials | mean flips | non-finite logits |\n";
  if (many_models) s += "| --- ";
  s += devices ? "| --- | --- | --- | --- |" : "| --- | --- | --- |";
  s += " ---: | ---: | ---: | ---: | ---: | ---: |\n";
  std::string prev_model, prev_dtype;
  for (const GroupSummary& g : groups) {
    // As in the paper, a datatype is named once at the top of its block.
    const bool new_block = g.model != prev_model || g.dtype != prev_dtype;
    if (many_models) s += "| " + (g.model != prev_model ? md_cell(g.model) : "") + " ";
    s += "| " + (new_block ? md_cell(display_dtype(g.dtype)) : "") + " | " +
         md_cell(display_saf(g.saf)) + " | " + fmt_ber(g.ber) + " | " + (devices ? md_cell(g.device) + " | " : "") +
         (g.clean_top1 ? fixed(*g.clean_top1, 2) : "n/a") + " | " + fixed(g.top1_mean, 2) + " ± " +
         fixed(g.top1_std, 2) + " | " +
         (g.trials >= 2 ? "[" + fixed(g.top1_ci_lo, 2) + ", " + fixed(g.top1_ci_hi, 2) + "]"
                        : "n/a") +
         " | " + std::to_string(g.trials) + " | " + fixed(g.flips_mean, 1) + " | " +
         (g.nonfinite_logits_known == 0 ? "n/a"
                                        : fixed(g.nonfinite_logits_mean, 1) +
                                              (g.nonfinite_logits_known < g.trials ? "*" : "")) +
         " |\n";
    prev_model = g.model;
    prev_dtype = g.dtype;
  }
  s += "\nAfter Top-1: mean ± population std (ddof = 0) over the trials. 95% CI of the mean: "
       "mean ± t(0.975, n−1) · s / √n with the sample std s (ddof = 1). Non-finite logits: mean "
       "images per trial whose logits hold a NaN or infinity (* over the trials that recorded it).\n";
  s += devices_line(records);
  std::string stopped;
  for (const GroupSummary& g : groups)
    if (g.until_ci > 0)
      stopped += "- " + (many_models ? g.model + " " : std::string()) + display_dtype(g.dtype) + " " +
                 display_saf(g.saf) + " BER " + fmt_ber(g.ber) + (devices ? " on " + g.device : std::string()) +
                 ": " + stop_reason(g) + "\n";
  if (!stopped.empty())
    s += "\nStopped early (faults --until-ci: the first trial count, from the minimum on, whose CI meets the "
         "width):\n" + stopped;
  return s;
}

std::string report_csv(const std::vector<TrialRecord>& records) {
  std::string s =
      "model,saf,dtype,ber,campaign,clean_top1,trials,top1_mean,top1_std_pop,top1_std_sample,"
      "top1_ci95_lo,top1_ci95_hi,top5_mean,top5_std_pop,loss_mean_finite,loss_nonfinite_trials,"
      "flips_mean,nonfinite_weights_mean,trials_with_nonfinite_weights,seconds_total,"
      "nonfinite_logits_mean,nonfinite_logits_trials,stopped_until_ci,stopped_min_trials,stopped_max_trials,device\n";
  for (const GroupSummary& g : summarize(records)) {
    const std::vector<std::string> cells = {csv_field(g.model),
                                            csv_field(g.saf),
                                            csv_field(g.dtype),
                                            shortest(g.ber),
                                            csv_field(g.campaign),
                                            g.clean_top1 ? shortest(*g.clean_top1) : "",
                                            std::to_string(g.trials),
                                            shortest(g.top1_mean),
                                            shortest(g.top1_std),
                                            shortest(g.top1_std_sample),
                                            shortest(g.top1_ci_lo),
                                            shortest(g.top1_ci_hi),
                                            shortest(g.top5_mean),
                                            shortest(g.top5_std),
                                            shortest(g.loss_mean),
                                            std::to_string(g.loss_nonfinite),
                                            shortest(g.flips_mean),
                                            shortest(g.nonfinite_mean),
                                            std::to_string(g.trials_with_nonfinite),
                                            shortest(g.seconds_total),
                                            shortest(g.nonfinite_logits_mean),
                                            std::to_string(g.nonfinite_logits_known),
                                            g.until_ci > 0 ? shortest(g.until_ci) : "",
                                            g.until_ci > 0 ? std::to_string(g.min_trials) : "",
                                            g.until_ci > 0 ? std::to_string(g.max_trials) : "",
                                            csv_field(g.device)};
    for (std::size_t i = 0; i < cells.size(); ++i) s += (i ? "," : "") + cells[i];
    s += "\n";
  }
  return s;
}

std::string report_svg(const std::vector<TrialRecord>& records) {
  const std::vector<GroupSummary> groups = summarize(records);
  std::vector<std::string> models, safs, devices;  // in report order; a saf keeps its colour in every panel
  for (const GroupSummary& g : groups) {
    if (g.ber <= 0) continue;
    if (std::find(models.begin(), models.end(), g.model) == models.end()) models.push_back(g.model);
    if (std::find(safs.begin(), safs.end(), g.saf) == safs.end()) safs.push_back(g.saf);
    if (std::find(devices.begin(), devices.end(), g.device) == devices.end()) devices.push_back(g.device);
  }
  if (models.empty()) fail("report: no trials with BER > 0 to plot");
  std::sort(safs.begin(), safs.end(), [](const std::string& a, const std::string& b) {
    return std::make_tuple(saf_rank(a), a) < std::make_tuple(saf_rank(b), b);
  });

  PlotFigure fig;
  fig.title = "Top-1 accuracy under bit flips" +
              (models.size() == 1 ? " \u2014 " + models[0] : std::string());
  fig.x_title = "Bit error rate (BER)";
  fig.y_title = "Top-1 accuracy (%)";
  fig.reference_label = "without faults";
  std::int64_t min_trials = std::numeric_limits<std::int64_t>::max(), max_trials = 0;
  for (const GroupSummary& g : groups) {
    if (g.ber <= 0) continue;
    min_trials = std::min(min_trials, g.trials);
    max_trials = std::max(max_trials, g.trials);
    const std::string panel_title = display_dtype(g.dtype);
    auto panel = std::find_if(fig.panels.begin(), fig.panels.end(),
                              [&](const PlotPanel& p) { return p.title == panel_title; });
    if (panel == fig.panels.end())
      panel = fig.panels.insert(fig.panels.end(), PlotPanel{panel_title, {}, {}});
    const std::string label = (models.size() > 1 ? g.model + " " : std::string()) + display_saf(g.saf) +
                              (g.device.empty() ? std::string() : " (" + g.device + ")");
    auto series = std::find_if(panel->series.begin(), panel->series.end(),
                               [&](const PlotSeries& s) { return s.label == label; });
    if (series == panel->series.end()) {
      const auto rank = [](const std::vector<std::string>& v, const std::string& x) {
        return static_cast<std::ptrdiff_t>(std::find(v.begin(), v.end(), x) - v.begin());
      };
      const auto n_models = static_cast<std::ptrdiff_t>(models.size()), n_safs = static_cast<std::ptrdiff_t>(safs.size());
      const int style = static_cast<int>((rank(devices, g.device) * n_models + rank(models, g.model)) * n_safs +
                                         rank(safs, g.saf));
      series = panel->series.insert(panel->series.end(), PlotSeries{label, style, {}, {}});
    }
    series->points.push_back(
        {g.ber, g.top1_mean, g.top1_mean - g.top1_std, g.top1_mean + g.top1_std});
    if (!series->reference_y && g.clean_top1) series->reference_y = *g.clean_top1;
  }
  // Clean accuracies within a point of each other would draw as one smeared line: draw one.
  for (PlotPanel& panel : fig.panels) {
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int count = 0;
    for (const PlotSeries& ser : panel.series)
      if (ser.reference_y) {
        lo = std::min(lo, *ser.reference_y);
        hi = std::max(hi, *ser.reference_y);
        sum += *ser.reference_y;
        ++count;
      }
    if (count < 2 || hi - lo > 1.0) continue;
    panel.reference_y = sum / count;
    for (PlotSeries& ser : panel.series) ser.reference_y.reset();
    fig.reference_label = "without faults (mean)";
  }
  fig.notes.push_back("lines: mean over " +
                      (min_trials == max_trials
                           ? std::to_string(min_trials)
                           : std::to_string(min_trials) + "\u2013" + std::to_string(max_trials)) +
                      " trials");
  fig.notes.push_back("bands: \u00b1 1 std (population)");
  return render_svg(fig);
}

}  // namespace safnet
