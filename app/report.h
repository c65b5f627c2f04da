// Campaign reports: per-group statistics, a paper-style Markdown table, CSV and an SVG plot.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "app/results.h"

namespace safnet {

// Statistics of the trials (trial >= 0) of one (model, saf, dtype, ber).
// std is the population std (ddof = 0, numpy's default); the 95% CI of the mean uses the sample
// std s (ddof = 1): mean +- t(0.975, n - 1) * s / sqrt(n). With n = 1 the CI is NaN.
struct GroupSummary {
  std::string campaign, model, saf, dtype;
  // When the records name more than one kind of device, groups are split by it: "cpu", "cuda",
  // "sim", or "unknown" for records that name none. Empty otherwise.
  std::string device;
  double ber = 0;
  std::optional<double> clean_top1;  // the trial -1 record: same ber if present, else any ber
  std::int64_t trials = 0;
  double top1_mean = 0, top1_std = 0, top1_std_sample = 0, top1_ci_lo = 0, top1_ci_hi = 0;
  double top5_mean = 0, top5_std = 0;
  double loss_mean = 0;             // over finite losses; NaN if none is finite
  std::int64_t loss_nonfinite = 0;  // trials whose loss is NaN or inf
  double flips_mean = 0;
  double nonfinite_mean = 0;  // non-finite weights read per trial
  std::int64_t trials_with_nonfinite = 0;
  double seconds_total = 0;
  // Images whose logits held a NaN or infinity, per trial: the mean over the trials that
  // recorded it (files from before the field existed did not); NaN when none did.
  double nonfinite_logits_mean = 0;
  std::int64_t nonfinite_logits_known = 0;  // trials that recorded it
  double top1_ci_half = 0;  // half-width of the 95% CI of the mean top-1; NaN with n = 1
  // The rule under which `faults --until-ci` stopped this group early: copied from its last trial
  // when that trial carries the stop fields and the group holds exactly trials 0..trial (a group
  // extended later is not stopped at its current count); until_ci = 0 otherwise.
  double until_ci = 0;
  std::int64_t min_trials = 0, max_trials = 0;
};

// Half-width of the 95% CI of the mean of `values`: t(0.975, n - 1) * s / sqrt(n) with the sample
// std s (ddof = 1); NaN for fewer than two values. The report's CI and the stop rule of
// `faults --until-ci` both use it, so a cell stops exactly where the report agrees.
double ci95_half_width(const std::vector<double>& values);

// Groups in report order: model, dtype (f32, f16, bf16, fixed), ber, saf (none, tanh, tanh_c,
// softsign, arctan, others), then device where the records name more than one kind. Repeated trials that agree are counted once; conflicting
// repeats, or one group fed by two campaigns, are errors.
std::vector<GroupSummary> summarize(const std::vector<TrialRecord>& records);

// Student t distribution with `dof` > 0 degrees of freedom.
double student_t_cdf(double t, double dof);
double student_t_quantile(double p, double dof);  // p in (0, 1)

// Names as the paper prints them: f32 -> FP32, fixed2.5 -> Q2.5, tanh_c0.5 -> Tanh0.5.
std::string display_dtype(const std::string& dtype);
std::string display_saf(const std::string& saf);

// Markdown in the layout of the paper's Table I, with BER, CI, trials, mean flips and mean images
// with non-finite logits added ("n/a" where no trial recorded them, "*" marks a partial count), and
// below it a line per group that `faults --until-ci` stopped early, with its rule.
std::string report_table(const std::vector<TrialRecord>& records);
// One row per group, raw names, every number in shortest round-trip form; NaN is an empty cell.
std::string report_csv(const std::vector<TrialRecord>& records);
// Accuracy vs BER like the paper's Fig. 3: one panel per dtype, one line per (model, saf), a
// band of +-1 population std, and the clean accuracy dashed (one grey line per panel when the
// lines' clean accuracies lie within 1 point). Groups with ber = 0 cannot sit on the log axis.
std::string report_svg(const std::vector<TrialRecord>& records);

}  // namespace safnet
