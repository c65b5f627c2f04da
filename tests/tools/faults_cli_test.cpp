// Fault campaigns from the command line: determinism across threads and shards, merge, resume
// after a kill, replay, report, refusal to mix campaigns, and sequential stopping (--until-ci).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "app/report.h"
#include "app/results.h"
#include "host/file_io.h"
#include "tests/tools/tool_test_util.h"
#include "tests/skip.h"

namespace safnet {
namespace {

using test::run;

class FaultsCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::have_fashion_mnist()) return;
    dir_ = new std::string(test::temp_dir("faults_cli"));
    const auto r = run("train --model mlp --saf tanh --dataset fashion-mnist --limit 512 --epochs 1 --batch 64 --quiet --out " +
                       *dir_ + "/tanh");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  void SetUp() override {
    if (!test::have_fashion_mnist()) SAFNET_SKIP_OR_FAIL("dataset-fashion-mnist is not installed");
  }
  static std::string ckpt() { return *dir_ + "/tanh/checkpoint.safetensors"; }
  static std::string campaign(const std::string& extra) {
    return "faults --checkpoint " + ckpt() + " --limit 200 --dtype f32,fixed2.5 --ber 1e-4,1e-3 --trials 6 --seed 9 --quiet " + extra;
  }
  static std::vector<TrialRecord> sorted(std::vector<TrialRecord> v) {
    std::sort(v.begin(), v.end(), [](const TrialRecord& a, const TrialRecord& b) {
      return std::tie(a.dtype, a.ber, a.trial) < std::tie(b.dtype, b.ber, b.trial);
    });
    for (auto& r : v) r.seconds = 0;
    return v;
  }
  static std::string* dir_;
};
std::string* FaultsCli::dir_ = nullptr;

TEST_F(FaultsCli, EvalPrintsEveryStorageDtype) {
  const auto r = run("eval --checkpoint " + ckpt() + " --limit 300 --dtype f32,f16,bf16,fixed2.5");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* row : {"| f32 |", "| f16 |", "| bf16 |", "| fixed2.5 |"})
    EXPECT_NE(r.output.find(row), std::string::npos) << row << "\n" << r.output;
}

TEST_F(FaultsCli, SameResultsWhateverTheThreadCountAndSharding) {
  const std::string one = *dir_ + "/one.jsonl", two = *dir_ + "/two.jsonl";
  ASSERT_EQ(run(campaign("--threads 1 --out " + one)).code, 0);
  ASSERT_EQ(run(campaign("--threads 2 --out " + two)).code, 0);
  const auto a = sorted(read_results(one));
  EXPECT_EQ(a.size(), 2u * 2u * 7u);  // dtypes x BERs x (clean + 6 trials)
  EXPECT_EQ(a, sorted(read_results(two)));
  bool some_flips = false;
  for (const auto& r : a) some_flips = some_flips || r.flips > 0;
  EXPECT_TRUE(some_flips);

  const std::string s0 = *dir_ + "/s0.jsonl", s1 = *dir_ + "/s1.jsonl", merged = *dir_ + "/merged.jsonl";
  ASSERT_EQ(run(campaign("--shard 0/2 --out " + s0)).code, 0);
  ASSERT_EQ(run(campaign("--shard 1/2 --out " + s1)).code, 0);
  const auto m = run("merge --out " + merged + " " + s0 + " " + s1);
  ASSERT_EQ(m.code, 0) << m.output;
  EXPECT_EQ(a, sorted(read_results(merged)));
}

// --prefix-cache 0 evaluates the whole network for every trial; the default restarts trials from
// cached clean activations, says how much that skipped, and writes the same records.
TEST_F(FaultsCli, PrefixCacheWritesTheSameRecordsAndSaysWhatItSkipped) {
  const std::string off = *dir_ + "/prefix_off.jsonl", on = *dir_ + "/prefix_on.jsonl";
  const std::string args = "faults --checkpoint " + ckpt() + " --limit 100 --dtype f32,fixed2.5 --ber 1e-5 --trials 4 --seed 3 --threads 2 ";
  const auto a = run(args + "--prefix-cache 0 --out " + off);
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_EQ(a.output.find("golden prefix"), std::string::npos) << a.output;
  const auto b = run(args + "--out " + on);
  ASSERT_EQ(b.code, 0) << b.output;
  EXPECT_NE(b.output.find("trials with flips started past the first layer"), std::string::npos) << b.output;
  auto text = [](const std::string& path) {  // NaN losses compare by their text
    std::string out;
    for (const TrialRecord& r : sorted(read_results(path))) out += to_json_line(r) + "\n";
    return out;
  };
  EXPECT_EQ(text(off), text(on));
  EXPECT_NE(run(args + "--prefix-cache -1 --out " + *dir_ + "/prefix_bad.jsonl").code, 0);
}

TEST_F(FaultsCli, ResumesAfterAKillWithoutLosingOrDuplicatingTrials) {
  const std::string out = *dir_ + "/killed.jsonl";
  const std::string args = "faults --checkpoint " + ckpt() + " --limit 1000 --dtype f32 --ber 1e-3 --trials 400 --seed 4 --threads 1 --quiet --out " + out;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + test::safnet_bin() + " " + args + " >/dev/null 2>&1").c_str(), nullptr);
    _exit(127);
  }
  // Kill it once some trials are on disk but long before it finishes.
  for (int i = 0; i < 600; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (file_exists(out) && read_file(out).size() > 2000) break;
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  const auto partial = read_results(out);
  ASSERT_GT(partial.size(), 3u);
  ASSERT_LT(partial.size(), 401u) << "the campaign finished before it was killed";
  const auto r = run(args);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto all = read_results(out);
  EXPECT_EQ(all.size(), 401u);
  std::set<std::int64_t> trials;
  for (const auto& rec : all) trials.insert(rec.trial);
  EXPECT_EQ(trials.size(), 401u);
  // Every record written before the kill is still there, unchanged.
  for (std::size_t i = 0; i < partial.size(); ++i) EXPECT_TRUE(same_result(partial[i], all[i])) << i;
}

TEST_F(FaultsCli, ReplayListsFlipsAndMatchesTheRecord) {
  const std::string out = *dir_ + "/replay.jsonl";
  ASSERT_EQ(run("faults --checkpoint " + ckpt() + " --limit 200 --dtype f16 --ber 1e-4 --trials 3 --seed 2 --quiet --out " + out).code, 0);
  const auto r = run("faults --checkpoint " + ckpt() + " --limit 200 --dtype f16 --ber 1e-4 --seed 2 --replay 1 --list-flips --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("recorded trial matches"), std::string::npos) << r.output;
  std::int64_t flips = -1;
  for (const auto& rec : read_results(out))
    if (rec.trial == 1) flips = rec.flips;
  EXPECT_NE(r.output.find(std::to_string(flips) + " flipped bits"), std::string::npos) << r.output;
}

TEST_F(FaultsCli, RefusesToMixCampaignsAndBadBer) {
  const std::string out = *dir_ + "/mix.jsonl";
  ASSERT_EQ(run(campaign("--out " + out)).code, 0);
  const auto before = read_file(out);
  auto r = run("faults --checkpoint " + ckpt() + " --limit 200 --dtype f32 --ber 1e-4 --trials 2 --seed 10 --quiet --out " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("another campaign"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(out), before);
  r = run(campaign("--ber 2 --out " + *dir_ + "/bad.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("[0, 1]"), std::string::npos) << r.output;
}

TEST_F(FaultsCli, ReportWritesTableCsvAndSvg) {
  const std::string out = *dir_ + "/rep.jsonl";
  ASSERT_EQ(run(campaign("--out " + out)).code, 0);
  const auto r = run("report " + out + " --csv " + *dir_ + "/rep.csv --svg " + *dir_ + "/rep.svg");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Q2.5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Tanh"), std::string::npos) << r.output;
  EXPECT_TRUE(file_exists(*dir_ + "/rep.csv"));
  const auto svg = read_file(*dir_ + "/rep.svg");
  EXPECT_NE(std::string(svg.begin(), svg.end()).find("<svg"), std::string::npos);
}

// --until-ci: 2 cells of at most 30 trials, stopping from 5 on. The expected file comes from the
// same trials run without --until-ci: each cell's prefix up to the first n whose CI meets W.
class UntilCi : public FaultsCli {
 protected:
  static constexpr std::int64_t kMax = 30, kMin = 5;
  static std::string campaign(const std::string& extra) {
    return "faults --checkpoint " + ckpt() + " --limit 100 --dtype f32,fixed2.5 --ber 1e-3 --trials 30 --seed 5 --quiet " + extra;
  }
  static std::string until(double w) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "--until-ci %.17g --min-trials %lld ", w, static_cast<long long>(kMin));
    return buf;
  }
  // The records as the file's lines, sorted, `seconds` zeroed: readable when they differ.
  static std::string lines(const std::vector<TrialRecord>& recs) {
    std::string out;
    for (const TrialRecord& r : sorted(recs)) out += to_json_line(r) + "\n";
    return out;
  }
  // Trials >= 0 of each cell, in index order.
  static std::map<std::string, std::vector<TrialRecord>> cells(const std::vector<TrialRecord>& recs) {
    std::map<std::string, std::vector<TrialRecord>> out;
    for (const TrialRecord& r : sorted(recs))
      if (r.trial >= 0) out[r.dtype].push_back(r);
    return out;
  }
  // The file --until-ci w must write, by brute force over the prefixes of the full run.
  static std::vector<TrialRecord> expected(const std::vector<TrialRecord>& full, double w) {
    std::vector<TrialRecord> out;
    for (const TrialRecord& r : full)
      if (r.trial < 0) out.push_back(r);
    for (auto& [dtype, trials] : cells(full)) {
      std::vector<double> top1;
      for (TrialRecord r : trials) {
        top1.push_back(r.top1);
        const auto n = static_cast<std::int64_t>(top1.size());
        const bool stop = n >= kMin && n < kMax && ci95_half_width(top1) <= w;
        if (stop) {
          r.until_ci = w;
          r.min_trials = kMin;
          r.max_trials = kMax;
        }
        out.push_back(r);
        if (stop) break;
      }
    }
    return sorted(out);
  }
  static void SetUpTestSuite() {
    if (!test::have_fashion_mnist()) return;
    if (dir_ == nullptr) FaultsCli::SetUpTestSuite();  // the checkpoint, unless FaultsCli made it
    full_ = new std::vector<TrialRecord>;
    const std::string path = *dir_ + "/full.jsonl";
    ASSERT_EQ(run(campaign("--threads 2 --out " + path)).code, 0);
    *full_ = sorted(read_results(path));
    // W: the half-width of the first cell at n = 12, so it stops at 12 or earlier.
    std::vector<double> top1;
    const auto by_dtype = cells(*full_);  // named: the loop below runs over one of its members
    for (const TrialRecord& r : by_dtype.begin()->second)
      if (top1.size() < 12) top1.push_back(r.top1);
    w_ = ci95_half_width(top1);
  }
  static std::vector<TrialRecord>* full_;
  static double w_;
};
std::vector<TrialRecord>* UntilCi::full_ = nullptr;
double UntilCi::w_ = 0;

TEST_F(UntilCi, StopsWhereThePrefixRuleDoesWhateverTheThreadCount) {
  ASSERT_EQ(full_->size(), 2u * 31u);
  const auto want = expected(*full_, w_);
  ASSERT_LT(want.size(), full_->size()) << "no cell stopped early";
  const std::string one = *dir_ + "/until1.jsonl", two = *dir_ + "/until2.jsonl";
  auto r = run(campaign(until(w_) + "--threads 1 --out " + one));
  ASSERT_EQ(r.code, 0) << r.output;
  r = run(campaign(until(w_) + "--threads 2 --out " + two));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(lines(read_results(one)), lines(want));
  EXPECT_EQ(lines(read_results(two)), lines(want));

  // The report names the stopped cells and their rule.
  r = run("report " + two);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const auto& [dtype, trials] : cells(want)) {
    if (!trials.back().stopped_cell()) continue;
    char line[160];
    std::snprintf(line, sizeof line, "BER 1e-3: stopped at %zu of %lld trials: CI95 half-width ", trials.size(),
                  static_cast<long long>(kMax));
    EXPECT_NE(r.output.find(display_dtype(dtype) + " Tanh " + line), std::string::npos) << r.output;
  }
}

// A partial file (cut as a kill leaves it: a prefix of each cell, a torn last line) resumes to the
// same file; a rerun with a smaller width extends the same cells.
TEST_F(UntilCi, ResumesAPartialFileAndExtendsWithASmallerWidth) {
  const auto want = expected(*full_, w_);
  std::string text;
  for (const auto& [dtype, trials] : cells(want))
    for (std::size_t i = 0; i < trials.size() / 2; ++i) text += to_json_line(trials[i]) + "\n";
  text += to_json_line(want.front()).substr(0, 30);
  const std::string out = *dir_ + "/until_resume.jsonl";
  write_file_atomic(out, text);
  auto r = run(campaign(until(w_) + "--threads 2 --out " + out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(lines(read_results(out)), lines(want));

  r = run(campaign(until(w_ / 2) + "--threads 2 --out " + out));
  ASSERT_EQ(r.code, 0) << r.output;
  auto smaller = expected(*full_, w_ / 2);
  for (TrialRecord& s : smaller)  // the trial that met w keeps that stop; the later records are new
    for (const TrialRecord& t : want)
      if (t.stopped_cell() && t.dtype == s.dtype && t.trial == s.trial) s = t;
  EXPECT_EQ(lines(read_results(out)), lines(smaller));
}

TEST_F(UntilCi, RefusesShardsAndAMinimumWithoutIt) {
  auto r = run(campaign("--until-ci 1 --shard 1/2 --out " + *dir_ + "/until_shard.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--until-ci cannot run with --shard 1/2"), std::string::npos) << r.output;
  EXPECT_FALSE(file_exists(*dir_ + "/until_shard.jsonl"));
  r = run(campaign("--min-trials 3 --out " + *dir_ + "/until_min.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--min-trials goes with --until-ci"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace safnet
