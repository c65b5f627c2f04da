// Tests of campaign reports: Student t, group statistics, the Markdown table, CSV and SVG plot.
#include "app/report.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "host/check.h"
#include "app/svg_plot.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

namespace fs = std::filesystem;

TrialRecord rec(const std::string& saf, const std::string& dtype, double ber, std::int64_t trial,
                double top1, std::int64_t flips = 0) {
  TrialRecord r;
  r.campaign = "camp-" + saf;
  r.model = "resnet20";
  r.saf = saf;
  r.dtype = dtype;
  r.ber = ber;
  r.trial = trial;
  r.seed = 1;
  r.flips = flips;
  r.top1 = top1;
  r.top5 = std::min(100.0, top1 + 5);
  r.loss = 1.0 + static_cast<double>(trial);
  r.seconds = 0.5;
  return r;
}

// Three groups given out of report order: fixed2.5/none (1 trial, clean run stored at BER 0),
// f32/tanh (4 trials), f32/none (2 trials). Images with non-finite logits: known for every
// f32/tanh trial (2 * trial), for one f32/none trial (10), for no fixed2.5 trial.
std::vector<TrialRecord> example() {
  std::vector<TrialRecord> recs = {
      rec("none", "fixed2.5", 1e-5, 0, 50, 7), rec("none", "fixed2.5", 0, -1, 91.08),
      rec("tanh", "f32", 1e-5, 2, 70, 4),      rec("tanh", "f32", 1e-5, 0, 90, 2),
      rec("tanh", "f32", 1e-5, -1, 92.5),      rec("tanh", "f32", 1e-5, 3, 60, 5),
      rec("tanh", "f32", 1e-5, 1, 80, 3),      rec("none", "f32", 1e-5, 1, 20, 12),
      rec("none", "f32", 1e-5, 0, 40, 10),     rec("none", "f32", 1e-5, -1, 92.34)};
  for (TrialRecord& r : recs)
    if (r.saf == "tanh") r.nonfinite_logits = 2 * r.trial + (r.trial < 0 ? 2 : 0);
  recs[7].nonfinite_logits = 10;
  return recs;
}

// t(0.975, 3) and t(0.975, 1) from tables of the Student t distribution.
constexpr double kT975_3 = 3.18244630528371, kT975_1 = 12.7062047361747;

TEST(StudentT, QuantileMatchesTables) {
  // Quantiles from tables (computed independently to 15 digits).
  const struct {
    double p, dof, t;
  } cases[] = {
      {0.975, 1, 12.7062047361747}, {0.975, 2, 4.30265272974946}, {0.975, 3, kT975_3},
      {0.975, 9, 2.2621571627982},  {0.975, 29, 2.0452296421327}, {0.975, 99, 1.98421695158642},
      {0.95, 10, 1.81246112281168}, {0.995, 5, 4.03214298355523}, {0.975, 1e6, 1.95996635681411}};
  for (const auto& c : cases) {
    EXPECT_NEAR(student_t_quantile(c.p, c.dof), c.t, 1e-9 * c.t) << c.p << " " << c.dof;
    EXPECT_NEAR(student_t_quantile(1 - c.p, c.dof), -c.t, 1e-9 * c.t);
  }
  EXPECT_EQ(student_t_quantile(0.5, 7), 0);
  EXPECT_THROW(student_t_quantile(1, 3), Error);
  EXPECT_THROW(student_t_quantile(0.9, 0), Error);
}

TEST(StudentT, QuantileMatchesClosedFormsAndDensityIntegral) {
  const double pi = std::acos(-1.0);
  for (double p : {0.6, 0.9, 0.975, 0.999}) {
    EXPECT_NEAR(student_t_quantile(p, 1), std::tan(pi * (p - 0.5)), 1e-9);
    EXPECT_NEAR(student_t_quantile(p, 2), (2 * p - 1) / std::sqrt(2 * p * (1 - p)), 1e-9);
    for (double dof : {3.0, 7.0, 30.0, 250.0}) {
      // 0.5 + integral of the density from 0 to q by Simpson's rule; the error bound
      // h^4 max|f''''| q / 180 is far below 1e-9 with these 20000 steps.
      const double q = student_t_quantile(p, dof);
      const double norm =
          std::exp(std::lgamma((dof + 1) / 2) - std::lgamma(dof / 2)) / std::sqrt(dof * pi);
      auto f = [&](double x) { return norm * std::pow(1 + x * x / dof, -(dof + 1) / 2); };
      const int steps = 20000;
      const double h = q / steps;
      double sum = f(0) + f(q);
      for (int i = 1; i < steps; ++i) sum += (i % 2 ? 4 : 2) * f(i * h);
      EXPECT_NEAR(0.5 + sum * h / 3, p, 1e-9) << p << " " << dof;
    }
  }
}

TEST(ReportSummary, MatchesStatisticsFromTheirDefinitions) {
  const auto groups = summarize(example());
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].dtype, "f32");
  EXPECT_EQ(groups[0].saf, "none");
  EXPECT_EQ(groups[1].saf, "tanh");
  EXPECT_EQ(groups[2].dtype, "fixed2.5");

  const GroupSummary& g = groups[1];
  const std::vector<double> x = {90, 80, 70, 60};
  const double n = 4, mean = (90 + 80 + 70 + 60) / n;
  double ss = 0;
  for (double v : x) ss += (v - mean) * (v - mean);
  const double pop = std::sqrt(ss / n), sample = std::sqrt(ss / (n - 1));
  const double half = kT975_3 * sample / std::sqrt(n);
  EXPECT_EQ(g.trials, 4);
  EXPECT_DOUBLE_EQ(g.top1_mean, mean);
  EXPECT_NEAR(g.top1_std, pop, 1e-12);
  EXPECT_NEAR(g.top1_std_sample, sample, 1e-12);
  EXPECT_NEAR(g.top1_ci_lo, mean - half, 1e-9);
  EXPECT_NEAR(g.top1_ci_hi, mean + half, 1e-9);
  EXPECT_DOUBLE_EQ(g.flips_mean, 3.5);
  ASSERT_TRUE(g.clean_top1.has_value());
  EXPECT_EQ(*g.clean_top1, 92.5);
  EXPECT_DOUBLE_EQ(g.loss_mean, (1 + 2 + 3 + 4) / n);
  EXPECT_EQ(g.loss_nonfinite, 0);
  EXPECT_EQ(g.nonfinite_logits_known, 4);
  EXPECT_DOUBLE_EQ(g.nonfinite_logits_mean, (0 + 2 + 4 + 6) / n);  // the clean run is no trial
  EXPECT_EQ(groups[0].nonfinite_logits_known, 1);
  EXPECT_DOUBLE_EQ(groups[0].nonfinite_logits_mean, 10);  // over the trials that recorded it

  const GroupSummary& one = groups[2];
  EXPECT_EQ(one.trials, 1);
  EXPECT_EQ(one.top1_std, 0);
  EXPECT_TRUE(std::isnan(one.top1_ci_lo));
  EXPECT_EQ(one.nonfinite_logits_known, 0);
  EXPECT_TRUE(std::isnan(one.nonfinite_logits_mean));
  ASSERT_TRUE(one.clean_top1.has_value());
  EXPECT_EQ(*one.clean_top1, 91.08);  // found at BER 0
}

TEST(ReportSummary, NonFiniteLossesAreCountedNotAveraged) {
  auto recs = example();
  recs[2].loss = std::numeric_limits<double>::quiet_NaN();  // tanh trial 2
  recs[3].loss = std::numeric_limits<double>::infinity();   // tanh trial 0
  recs[3].nonfinite = 3;
  const GroupSummary g = summarize(recs)[1];
  EXPECT_EQ(g.loss_nonfinite, 2);
  EXPECT_DOUBLE_EQ(g.loss_mean, (2 + 4) / 2.0);
  EXPECT_EQ(g.trials_with_nonfinite, 1);
  EXPECT_DOUBLE_EQ(g.nonfinite_mean, 0.75);
}

TEST(ReportSummary, DuplicatesAndMixedCampaigns) {
  auto recs = example();
  TrialRecord again = recs[3];
  again.seconds = 99;  // the same trial evaluated again: counted once
  recs.push_back(again);
  EXPECT_EQ(summarize(recs)[1].trials, 4);
  recs.back().top1 = 11;
  EXPECT_THROW(summarize(recs), Error);
  recs.back() = rec("tanh", "f32", 1e-5, 9, 50);
  recs.back().campaign = "another";
  EXPECT_THROW(summarize(recs), Error);
}

// A trial written by an older writer (no count) and again with its count is one trial, and
// the count is used, in either order.
TEST(ReportSummary, RepeatWithoutNonfiniteLogitsAgreesAndTheCountIsKept) {
  for (const bool unknown_first : {true, false}) {
    auto recs = example();
    TrialRecord old = recs[8];  // f32/none trial 0, unknown
    TrialRecord known = old;
    known.nonfinite_logits = 4;
    recs[8] = unknown_first ? old : known;
    recs.push_back(unknown_first ? known : old);
    const GroupSummary g = summarize(recs)[0];
    EXPECT_EQ(g.trials, 2);
    EXPECT_EQ(g.nonfinite_logits_known, 2);
    EXPECT_DOUBLE_EQ(g.nonfinite_logits_mean, (10 + 4) / 2.0);
  }
}

TEST(ReportNames, PaperNaming) {
  EXPECT_EQ(display_dtype("f32"), "FP32");
  EXPECT_EQ(display_dtype("f16"), "FP16");
  EXPECT_EQ(display_dtype("bf16"), "BF16");
  EXPECT_EQ(display_dtype("fixed2.5"), "Q2.5");
  EXPECT_EQ(display_dtype("fixed3.4"), "Q3.4");
  EXPECT_EQ(display_saf("none"), "None");
  EXPECT_EQ(display_saf("tanh"), "Tanh");
  EXPECT_EQ(display_saf("tanh_c0.5"), "Tanh0.5");
  EXPECT_EQ(display_saf("softsign"), "Softsign");
  EXPECT_EQ(display_saf("arctan"), "Arctan");
}

TEST(ReportTable, PaperLayout) {
  const std::string t = report_table(example());
  std::istringstream in(t);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_GE(lines.size(), 5u) << t;
  EXPECT_EQ(
      lines[0],
      "| Datatype | SAF | BER | Top-1 (%) | After Top-1 (%) | 95% CI | trials | mean flips | non-finite logits |");
  // f32/none: mean 30, population std 10, CI 30 +- t(0.975,1) * 14.142 / sqrt(2) = 30 +- 127.06.
  EXPECT_NEAR(kT975_1 * std::sqrt(200.0) / std::sqrt(2.0), 127.062, 1e-3);
  EXPECT_EQ(lines[2],
            "| FP32 | None | 1e-5 | 92.34 | 30.00 ± 10.00 | [-97.06, 157.06] | 2 | 11.0 | 10.0* |");
  // f32/tanh: mean 75, population std sqrt(125) = 11.18, CI 75 +- 3.1824 * 12.910 / 2 = 75
  // +- 20.54.
  EXPECT_EQ(lines[3], "|  | Tanh | 1e-5 | 92.50 | 75.00 ± 11.18 | [54.46, 95.54] | 4 | 3.5 | 3.0 |");
  EXPECT_EQ(lines[4], "| Q2.5 | None | 1e-5 | 91.08 | 50.00 ± 0.00 | n/a | 1 | 7.0 | n/a |");
  EXPECT_NE(t.find("(* over the trials that recorded it)"), std::string::npos);
  EXPECT_NE(t.find("population std"), std::string::npos);
  EXPECT_NE(t.find("sample std"), std::string::npos);
  EXPECT_THROW(report_table({rec("tanh", "f32", 1e-5, -1, 92)}), Error);
}

// Records that name their device are summed up under the table, with a warning when they mix
// kinds (then the rows are split by device); files from before records named it report as they did.
TEST(ReportTable, ShowsTheDevicesTheTrialsRanOn) {
  auto recs = example();
  EXPECT_EQ(report_table(recs).find("Ran on"), std::string::npos);
  for (TrialRecord& r : recs) r.device = "cuda";
  const std::string one = report_table(recs);
  EXPECT_NE(one.find("\nRan on: cuda (7 trials)\n"), std::string::npos) << one;
  recs[0].device = "cpu";
  recs[2].device = "";
  const std::string mixed = report_table(recs);
  EXPECT_NE(mixed.find("\nRan on: cpu (1 trial), cuda (5 trials), unknown (1 trial); rows are split by device"),
            std::string::npos)
      << mixed;
}

// A cell whose trials ran on two kinds of device reports a row per device, each with the clean
// run of its own device, in the table, the CSV and the plot.
TEST(ReportTable, RowsSplitByDeviceWhenTheRecordsMixThem) {
  auto recs = example();
  for (TrialRecord& r : recs) r.device = "cuda";
  EXPECT_EQ(report_table(recs).find("Device"), std::string::npos);
  EXPECT_EQ(summarize(recs).size(), 3u);
  for (const auto& [trial, top1] : std::vector<std::pair<std::int64_t, double>>{{-1, 92.4}, {0, 91}, {1, 81}}) {
    TrialRecord r = rec("tanh", "f32", 1e-5, trial, top1);
    r.device = "cpu";
    recs.push_back(r);
  }
  const std::vector<GroupSummary> groups = summarize(recs);
  ASSERT_EQ(groups.size(), 4u);
  const std::string t = report_table(recs);
  EXPECT_NE(t.find("| Datatype | SAF | BER | Device | Top-1 (%) |"), std::string::npos) << t;
  EXPECT_NE(t.find("| Tanh | 1e-5 | cpu | 92.40 | 86.00 ± 5.00 |"), std::string::npos) << t;
  EXPECT_NE(t.find("| Tanh | 1e-5 | cuda | 92.50 | 75.00 ± 11.18 |"), std::string::npos) << t;
  const std::string csv = report_csv(recs);
  EXPECT_NE(csv.find(",stopped_max_trials,device\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",cpu\n"), std::string::npos) << csv;
  const std::string svg = report_svg(recs);
  EXPECT_NE(svg.find("Tanh (cpu)"), std::string::npos);
  EXPECT_NE(svg.find("Tanh (cuda)"), std::string::npos);
  // Another math mode on the same device is another run too; fp32 is the plain device's.
  for (TrialRecord& r : recs)
    if (r.device == "cpu") {
      r.device = "cuda";
      r.math = "tf32";
    } else {
      r.math = "fp32";
    }
  const std::string by_math = report_table(recs);
  EXPECT_NE(by_math.find("| Tanh | 1e-5 | cuda tf32 | 92.40 | 86.00 ± 5.00 |"), std::string::npos) << by_math;
  EXPECT_NE(by_math.find("| Tanh | 1e-5 | cuda | 92.50 | 75.00 ± 11.18 |"), std::string::npos) << by_math;
  EXPECT_NE(by_math.find("\nRan on: cuda (7 trials), cuda tf32 (2 trials); rows are split"), std::string::npos)
      << by_math;
}

TEST(ReportTable, ManyModelsGetAModelColumn) {
  auto recs = example();
  TrialRecord other = rec("tanh", "f32", 1e-4, 0, 10);
  other.model = "resnet18";
  other.campaign = "camp-r18";
  recs.push_back(other);
  const std::string t = report_table(recs);
  EXPECT_EQ(t.rfind("| Model | Datatype |", 0), 0u) << t;
  EXPECT_NE(t.find("| resnet18 | FP32 | Tanh | 1e-4 | n/a | 10.00 ± 0.00 |"), std::string::npos)
      << t;
}

// A group that `faults --until-ci` stopped is named below the table with its rule, only while it
// holds exactly the trials up to the one that stopped it; the CSV carries the rule too.
TEST(ReportTable, NamesTheGroupsStoppedEarly) {
  auto recs = example();
  for (TrialRecord& r : recs)
    if (r.saf == "tanh" && r.trial == 3) {  // f32/tanh: 4 trials, CI half-width 20.54
      r.until_ci = 25;
      r.min_trials = 3;
      r.max_trials = 1000;
    }
  const std::vector<double> top1 = {90, 80, 70, 60};
  EXPECT_DOUBLE_EQ(ci95_half_width(top1), summarize(recs)[1].top1_ci_half);
  EXPECT_NEAR(ci95_half_width(top1), kT975_3 * std::sqrt(500.0 / 3) / 2, 1e-9);
  EXPECT_TRUE(std::isnan(ci95_half_width({50})));
  const std::string t = report_table(recs);
  EXPECT_NE(t.find("\n- FP32 Tanh BER 1e-5: stopped at 4 of 1000 trials: CI95 half-width 20.54 <= 25.00 (min 3 "
                   "trials)\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("None BER"), std::string::npos) << t;
  const std::string csv = report_csv(recs);
  EXPECT_NE(csv.find(",stopped_until_ci,stopped_min_trials,stopped_max_trials,device\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",25,3,1000,\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",0,,,,\n"), std::string::npos) << csv;  // Q2.5: not stopped

  recs.push_back(rec("tanh", "f32", 1e-5, 4, 50));  // extended past the stop by a later run
  EXPECT_EQ(report_table(recs).find("stopped at"), std::string::npos);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == sep)
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}

TEST(ReportCsv, FullPrecisionRows) {
  auto recs = example();
  for (auto& r : recs) r.ber = r.ber == 0 ? 0 : 1.0 / 3.0 * 1e-5;
  const std::string csv = report_csv(recs);
  const auto lines = split(csv, '\n');
  ASSERT_EQ(lines.size(), 5u);  // header, 3 groups, empty after the last '\n'
  const auto head = split(lines[0], ',');
  const auto row = split(lines[2], ',');  // f32/tanh
  ASSERT_EQ(row.size(), head.size());
  std::map<std::string, std::string> cell;
  for (std::size_t i = 0; i < head.size(); ++i) cell[head[i]] = row[i];
  EXPECT_EQ(cell["saf"], "tanh");
  EXPECT_EQ(cell["dtype"], "f32");
  EXPECT_EQ(std::strtod(cell["ber"].c_str(), nullptr), 1.0 / 3.0 * 1e-5);
  EXPECT_EQ(cell["trials"], "4");
  EXPECT_EQ(std::strtod(cell["top1_std_pop"].c_str(), nullptr), summarize(recs)[1].top1_std);
  EXPECT_EQ(std::strtod(cell["top1_ci95_lo"].c_str(), nullptr), summarize(recs)[1].top1_ci_lo);
  EXPECT_EQ(cell["clean_top1"], "92.5");
  EXPECT_EQ(cell["nonfinite_logits_mean"], "3");
  EXPECT_EQ(cell["nonfinite_logits_trials"], "4");
  // n = 1: no sample std and no CI; no trial recorded non-finite logits: an empty mean.
  const auto one = split(lines[3], ',');
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] == "top1_ci95_lo" || head[i] == "top1_std_sample" || head[i] == "nonfinite_logits_mean") {
      EXPECT_EQ(one[i], "") << head[i];
    }
    if (head[i] == "nonfinite_logits_trials") {
      EXPECT_EQ(one[i], "0");
    }
  }
}

// True if `svg` is well-formed XML: python3's parser when there is one, else a tag balance check.
bool well_formed(const std::string& svg, std::string& why) {
  const fs::path file = test::scratch_dir("report") / "plot.svg";
  std::ofstream(file, std::ios::binary) << svg;
  const std::string cmd =
      "python3 -c 'import sys, xml.etree.ElementTree as E; "
      "r = E.parse(sys.argv[1]).getroot(); "
      "sys.exit(0 if r.tag == \"{http://www.w3.org/2000/svg}svg\" else 3)' " +
      file.string() + " 2>/dev/null";
  const int rc = std::system(cmd.c_str());
  if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) != 127) {
    why = "python3 xml parser exit " + std::to_string(WEXITSTATUS(rc));
    return WEXITSTATUS(rc) == 0;
  }
  std::vector<std::string> stack;
  for (std::size_t i = svg.find('<'); i != std::string::npos; i = svg.find('<', i + 1)) {
    const std::size_t end = svg.find('>', i);
    if (end == std::string::npos) return why = "unclosed tag", false;
    const std::string tag = svg.substr(i + 1, end - i - 1);
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return why = "mismatched </" + tag, false;
      stack.pop_back();
    } else if (tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
  }
  why = "tag balance";
  return stack.empty();
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
  return n;
}

TEST(ReportSvg, WellFormedPlotWithPanelsLinesBandsAndLegend) {
  std::vector<TrialRecord> recs;
  double clean = 90;
  for (const std::string saf : {"none", "tanh", "softsign"})
    for (const std::string dtype : {"f32", "fixed2.5"}) {
      recs.push_back(rec(saf, dtype, 0, -1, clean += 1.5));
      for (double ber : {1e-6, 1e-5, 1e-4})
        for (int t = 0; t < 3; ++t) recs.push_back(rec(saf, dtype, ber, t, 80 - 200000 * ber - t));
    }
  recs.push_back(rec("none", "f32", 0, 0, 92));  // BER 0 cannot sit on the log axis
  const std::string svg = report_svg(recs);
  std::string why;
  EXPECT_TRUE(well_formed(svg, why)) << why << "\n" << svg.substr(0, 2000);
  EXPECT_EQ(count(svg, "<polyline"), 6u);              // one line per (saf, dtype)
  EXPECT_EQ(count(svg, "fill-opacity=\"0.14\""), 6u);  // one band each
  EXPECT_EQ(count(svg, "stroke-dasharray"), 6u + 1u);  // clean references + legend
  EXPECT_NE(svg.find(">FP32<"), std::string::npos);
  EXPECT_NE(svg.find(">Q2.5<"), std::string::npos);
  EXPECT_NE(svg.find(">Softsign<"), std::string::npos);
  for (const char* exp : {"\u22126<", "\u22125<", "\u22124<"})  // decade labels 10^-6 .. 10^-4
    EXPECT_EQ(count(svg, exp), 2u) << exp;
  EXPECT_EQ(count(svg, "\u22127<"), 0u);
  EXPECT_NE(svg.find("Bit error rate"), std::string::npos);
  EXPECT_NE(svg.find("Top-1 accuracy (%)"), std::string::npos);
  EXPECT_NE(svg.find("3 trials"), std::string::npos);
  // Clean accuracies within one point draw one grey line per panel instead of three.
  for (auto& r : recs)
    if (r.trial < 0) r.top1 = 92 + 0.3 * (r.saf == "tanh");
  const std::string merged = report_svg(recs);
  EXPECT_EQ(count(merged, "stroke-dasharray"), 2u + 1u);
  EXPECT_NE(merged.find("without faults (mean)"), std::string::npos);
  EXPECT_TRUE(well_formed(merged, why)) << why;
}

TEST(ReportSvg, RejectsWhatALogAxisCannotShow) {
  EXPECT_THROW(report_svg({rec("tanh", "f32", 0, 0, 50)}), Error);
  PlotFigure fig;
  fig.panels.push_back({"p", {PlotSeries{"s", 0, {{0.0, 1, 1, 1}}, {}}}, {}});
  EXPECT_THROW(render_svg(fig), Error);
  fig.panels[0].series[0].points[0].x = 1e-3;
  EXPECT_NO_THROW(render_svg(fig));
  fig.y_max = fig.y_min;
  EXPECT_THROW(render_svg(fig), Error);
}

TEST(SvgPlot, EscapesTextAndHostileLabelsStayWellFormed) {
  EXPECT_EQ(xml_escape("a<b&\"c'>"), "a&lt;b&amp;&quot;c&apos;&gt;");
  EXPECT_EQ(xml_escape("x\x01y\x7f"), "x?y?");
  EXPECT_EQ(xml_escape("caf\xc3\xa9 \xe2\x88\x92"), "caf\xc3\xa9 \xe2\x88\x92");
  EXPECT_EQ(xml_escape("\xff\xc3"), "??");
  EXPECT_EQ(xml_escape("\xc0\xaf"), "??");       // overlong '/'
  EXPECT_EQ(xml_escape("\xed\xa0\x80"), "???");  // a UTF-16 surrogate
  PlotFigure fig;
  fig.title = "<t>&\xff";
  fig.panels.push_back(
      {"]]>", {PlotSeries{"</text>", 3, {{1e-5, 120, -5, 200}, {1e-4, NAN, 0, 0}}, 50.0}}, {}});
  std::string why;
  EXPECT_TRUE(well_formed(render_svg(fig), why)) << why;
}

}  // namespace
}  // namespace safnet
