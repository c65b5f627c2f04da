// Tests of the campaign results file: record JSON, validation, torn lines, resume, merge, shards.
#include "app/results.h"
#include "tools/campaign_flags.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "host/check.h"
#include "host/file_io.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

namespace fs = std::filesystem;

std::string temp_dir() { return test::fresh_dir("results").string(); }

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TrialRecord make_record(std::int64_t trial, const std::string& dtype = "f16", double ber = 1e-5) {
  TrialRecord r;
  r.campaign = "c0ffee";
  r.model = "resnet20";
  r.saf = "tanh";
  r.dtype = dtype;
  r.ber = ber;
  r.trial = trial;
  r.seed = 42;
  r.flips = 3 * (trial + 1);
  r.top1 = 90 - 0.37 * static_cast<double>(trial + 1);
  r.top5 = 99.5;
  r.loss = 0.3 + static_cast<double>(trial + 1) / 7;
  r.nonfinite = (trial + 1) % 2;
  r.seconds = 1.25;
  r.nonfinite_logits = 2 * (trial + 1);
  return r;
}

// Expects `fn` to throw safnet::Error whose message starts with `where` and contains `what`.
template <typename Fn>
void expect_error(Fn fn, const std::string& where, const std::string& what) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected " << where << " ... " << what;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(where, 0), 0u) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one-line message: " << msg;
  }
}

// A record's line with one field set to `value`, or left out.
std::string with_field(const std::string& line, const std::string& key, const nlohmann::ordered_json& value) {
  auto j = nlohmann::ordered_json::parse(line);
  j[key] = value;
  return j.dump();
}
std::string without_field(const std::string& line, const std::string& key) {
  auto j = nlohmann::ordered_json::parse(line);
  j.erase(key);
  return j.dump();
}

TEST(ResultsRecord, JsonRoundTripIsExact) {
  TrialRecord r = make_record(7);
  r.model = "res\"net\\20 \u00e9";
  r.ber = 1.0 / 3.0 * 1e-5;
  r.top1 = 100.0 / 3.0;
  r.seed = std::numeric_limits<std::uint64_t>::max();
  r.flips = std::numeric_limits<std::int64_t>::max();
  const std::string line = to_json_line(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(parse_record(line, "x.jsonl", 1), r);
  for (double loss :
       {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
        std::numeric_limits<double>::quiet_NaN()}) {
    r.loss = loss;
    const TrialRecord back = parse_record(to_json_line(r), "x.jsonl", 1);
    EXPECT_TRUE(same_result(back, r));
    EXPECT_EQ(std::isnan(back.loss), std::isnan(loss));
    if (!std::isnan(loss)) {
      EXPECT_EQ(back.loss, loss);
    }
  }
  TrialRecord clean = make_record(-1);
  EXPECT_EQ(parse_record(to_json_line(clean), "x.jsonl", 1), clean);
}

TEST(ResultsRecord, WriterRejectsRecordsItCouldNotReadBack) {
  for (auto bad : {+[](TrialRecord& r) { r.ber = 1.5; }, +[](TrialRecord& r) { r.top1 = NAN; },
                   +[](TrialRecord& r) { r.trial = -2; }, +[](TrialRecord& r) { r.campaign = ""; },
                   +[](TrialRecord& r) { r.model = "\xff"; }, +[](TrialRecord& r) { r.nonfinite_logits = -2; }}) {
    TrialRecord r = make_record(0);
    bad(r);
    EXPECT_THROW(to_json_line(r), Error);
  }
}

TEST(ResultsRecord, MalformedLinesNamePathAndLine) {
  const std::string good = to_json_line(make_record(3));
  auto with = [&](const std::string& key, const nlohmann::ordered_json& value) { return with_field(good, key, value); };
  auto without = [&](const std::string& key) { return without_field(good, key); };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "invalid JSON"},
      {"", "invalid JSON"},
      {good.substr(0, good.size() / 2), "invalid JSON"},
      {good + " x", "invalid JSON"},
      {good + good, ""},
      {"[1, 2]", "flat JSON object"},
      {"42", "flat JSON object"},
      {without("model"), "missing field 'model'"},
      {without("seconds"), "missing field 'seconds'"},
      {with("ber", 1.5), "'ber'"},
      {with("ber", -1e-9), "[0, 1]"},
      {with("top1", "90"), "field 'top1' must not be a string"},
      {with("flips", "many"), "field 'flips' must not be a string"},
      {with("top5", nullptr), "field 'top5' must not be null"},
      {with("trial", 1.5), "field 'trial' must be an integer"},
      {with("trial", -2), "field 'trial'"},
      {with("seed", -1), "field 'seed' must be >= 0"},
      {with("top1", 100.5), "field 'top1'"},
      {with("seconds", -1), "field 'seconds'"},
      {with("loss", "bad"), "field 'loss'"},
      {with("model", 5), "field 'model' must not be a number"},
      {with("model", nlohmann::ordered_json::object()), "field 'model' must not be an object"},
      {with("dtype", nlohmann::ordered_json::array()), "field 'dtype' must not be an array"},
      {with("extra", 1), "unknown field 'extra'"},
      {with("a\nb", 1), "unknown field 'a?b'"},
      {with("flips", 18446744073709551615ull), "field 'flips' is too large"},
      {good.substr(0, good.size() - 1) + ",\"ber\":0.5}", "field 'ber' appears twice"},
      {"{\"ber\":1e999}", "invalid JSON"},
      {with("nonfinite_logits", -1), "field 'nonfinite_logits' must be >= 0 (omit it when unknown)"},
      {with("nonfinite_logits", 2.5), "field 'nonfinite_logits' must be an integer"},
      {with("nonfinite_logits", "3"), "field 'nonfinite_logits' must not be a string"},
      {with("nonfinite_logits", nullptr), "field 'nonfinite_logits' must not be null"},
      {with("device", "tpu"), "field 'device' is 'tpu' (valid: cpu, cuda, sim)"},
      {with("device", "cuda:0"), "field 'device' is 'cuda:0' (valid: cpu, cuda, sim)"},
      {with("device", ""), "field 'device' is empty (omit it when unknown)"},
      {with("device", 1), "field 'device' must not be a number"},
      {with("math", "fp16"), "field 'math' is 'fp16' (valid: fp32, 3xtf32, tf32, bf16)"},
      {with("math", ""), "field 'math' is empty (omit it when unknown)"},
  };
  for (const auto& [line, what] : cases) {
    SCOPED_TRACE(line);
    expect_error([&] { parse_record(line, "dir/f.jsonl", 17); }, "dir/f.jsonl:17: ", what);
  }
}

// Files written before nonfinite_logits existed lack it: it reads as -1 (unknown), a record
// with -1 is written as those files were, and it agrees with the same trial's known count.
TEST(ResultsRecord, NonfiniteLogitsIsOptionalAndUnknownIsMinusOne) {
  const TrialRecord now = make_record(3);
  const std::string line = to_json_line(now);
  EXPECT_NE(line.find("\"nonfinite_logits\":8"), std::string::npos) << line;
  auto j = nlohmann::ordered_json::parse(line);
  j.erase("nonfinite_logits");
  const std::string old_line = j.dump();
  const TrialRecord old = parse_record(old_line, "old.jsonl", 1);
  EXPECT_EQ(old.nonfinite_logits, -1);
  TrialRecord want = now;
  want.nonfinite_logits = -1;
  EXPECT_EQ(old, want);
  EXPECT_EQ(to_json_line(old), old_line);  // an old file rewritten (torn-line repair) keeps its form
  EXPECT_TRUE(same_result(old, now));
  EXPECT_TRUE(same_result(now, old));
  TrialRecord other = now;
  other.nonfinite_logits = 7;
  EXPECT_FALSE(same_result(other, now));
  TrialRecord zero = now;
  zero.nonfinite_logits = 0;  // known to be none: written, and distinct from unknown
  EXPECT_EQ(parse_record(to_json_line(zero), "x.jsonl", 1).nonfinite_logits, 0);
  EXPECT_FALSE(same_result(zero, other));
}

// A record names the kind of device and the math mode it ran in; files from before it did read
// as unknown (empty), are written back without the field, and a trial's copies from two devices or
// modes agree.
TEST(ResultsRecord, DeviceAndMathAreOptionalAndNotPartOfTheResult) {
  struct Field {
    const char* name;
    std::string TrialRecord::*member;
    const char* value;
    const char* other;
  };
  for (const Field f : {Field{"device", &TrialRecord::device, "sim", "cpu"},
                        Field{"math", &TrialRecord::math, "3xtf32", "fp32"}}) {
    SCOPED_TRACE(f.name);
    TrialRecord rec = make_record(2);
    rec.*f.member = f.value;
    const std::string line = to_json_line(rec);
    EXPECT_NE(line.find("\"" + std::string(f.name) + "\":\"" + f.value + "\""), std::string::npos) << line;
    EXPECT_EQ(parse_record(line, "x.jsonl", 1), rec);
    const std::string old_line = without_field(line, f.name);
    const TrialRecord old = parse_record(old_line, "old.jsonl", 1);
    EXPECT_EQ(old.*f.member, "");
    EXPECT_EQ(to_json_line(old), old_line);
    TrialRecord other = rec;
    other.*f.member = f.other;
    EXPECT_TRUE(same_result(other, rec));
    TrialRecord kept = old;
    absorb_duplicate(kept, rec);
    EXPECT_EQ(kept.*f.member, f.value);
  }
}

TEST(ResultsWriter, KnowsTheDevicesItsRecordsRanOn) {
  const std::string path = temp_dir() + "/r.jsonl";
  TrialRecord a = make_record(0), b = make_record(1), c = make_record(2);
  a.device = "cpu";
  b.device = "sim";
  {
    ResultsWriter w(path, a.campaign);
    EXPECT_TRUE(w.devices().empty());
    w.append(a);
    w.append(b);
    w.append(c);
  }
  ResultsWriter again(path, a.campaign);
  EXPECT_EQ(again.devices(), (std::set<std::string>{"", "cpu", "sim"}));
}

// The trial that stopped its cell under --until-ci carries the rule; every other record is
// written as before, without the fields, and the fields do not make two copies of a trial differ.
TEST(ResultsRecord, StopFieldsRoundTripComeTogetherAndAreChecked) {
  TrialRecord stop = make_record(11);
  stop.until_ci = 1.0 / 3.0;
  stop.min_trials = 10;
  stop.max_trials = 1000;
  const std::string line = to_json_line(stop);
  EXPECT_NE(line.find("\"until_ci\":0.3333333333333333,\"min_trials\":10,\"max_trials\":1000}"), std::string::npos)
      << line;
  EXPECT_EQ(parse_record(line, "x.jsonl", 1), stop);
  EXPECT_EQ(to_json_line(make_record(11)).find("until_ci"), std::string::npos);
  EXPECT_TRUE(same_result(stop, make_record(11)));
  TrialRecord kept = make_record(11);
  absorb_duplicate(kept, stop);
  EXPECT_EQ(kept, stop);

  auto with = [&](const std::string& key, const nlohmann::ordered_json& value) { return with_field(line, key, value); };
  auto without = [&](const std::string& key) { return without_field(line, key); };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {without("min_trials"), "fields 'until_ci', 'min_trials' and 'max_trials' go together"},
      {without("until_ci"), "go together"},
      {with("until_ci", 0), "field 'until_ci' is 0, must be finite and > 0"},
      {with("until_ci", "1"), "field 'until_ci' must not be a string"},
      {with("min_trials", 1), "field 'min_trials' is 1, must be >= 2"},
      {with("min_trials", 13), "trial 11 stopped its cell before min_trials 13"},
      {with("max_trials", 12), "field 'max_trials' is 12, must be > trial + 1 (12)"},
      {with("max_trials", 1.5), "field 'max_trials' must be an integer"},
  };
  for (const auto& [bad, what] : cases) {
    SCOPED_TRACE(bad);
    expect_error([&] { parse_record(bad, "dir/f.jsonl", 3); }, "dir/f.jsonl:3: ", what);
  }
}

TEST(ResultsFile, MissingFileReadsEmpty) {
  EXPECT_TRUE(read_results(temp_dir() + "/none.jsonl").empty());
}

TEST(ResultsFile, ReadsWhatWasWritten) {
  const std::string path = temp_dir() + "/r.jsonl";
  std::vector<TrialRecord> recs;
  std::string text;
  for (int t = -1; t < 4; ++t) {
    recs.push_back(make_record(t));
    text += to_json_line(recs.back()) + "\n";
  }
  write_text(path, text + "\n");  // a blank line is skipped
  EXPECT_EQ(read_results(path), recs);
}

TEST(ResultsFile, CorruptLineIsAnErrorNamingIt) {
  const std::string path = temp_dir() + "/r.jsonl";
  write_text(path, to_json_line(make_record(0)) + "\n{\"campaign\": oops}\n" +
                       to_json_line(make_record(1)) + "\n");
  expect_error([&] { read_results(path); }, path + ":2: ", "invalid JSON");
  // A torn line followed by more records (an append after a kill, without recovery) is not
  // the final line and so is an error too.
  const std::string torn = to_json_line(make_record(2));
  write_text(path, torn.substr(0, 30) + to_json_line(make_record(3)) + "\n");
  expect_error([&] { read_results(path); }, path + ":1: ", "");
}

TEST(ResultsFile, TruncatedLastLineIsDroppedWithWarning) {
  const std::string path = temp_dir() + "/r.jsonl";
  std::string text;
  std::vector<TrialRecord> recs;
  for (int t = 0; t < 3; ++t) {
    recs.push_back(make_record(t));
    text += to_json_line(recs.back()) + "\n";
  }
  const std::string last = to_json_line(make_record(3));
  for (std::size_t cut : {std::size_t{1}, last.size() / 2, last.size() - 1}) {
    write_text(path, text + last.substr(0, cut));
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(read_results(path), recs);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(path + ":4:"), std::string::npos) << err;
    EXPECT_NE(err.find("ignored"), std::string::npos) << err;
  }
  // Cut just before its '\n', the last record is complete and kept.
  write_text(path, text + last);
  ::testing::internal::CaptureStderr();
  const auto got = read_results(path);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3], make_record(3));
  EXPECT_NE(err.find("kept"), std::string::npos) << err;
}

TEST(ResultsWriter, ResumesFromFinishedTrials) {
  const std::string path = temp_dir() + "/r.jsonl";
  std::vector<TrialRecord> recs;
  {
    ResultsWriter w(path, "c0ffee");
    EXPECT_EQ(w.size(), 0u);
    for (int t = -1; t < 6; ++t) {
      recs.push_back(make_record(t));
      w.append(recs.back());
      EXPECT_TRUE(w.done("f16", 1e-5, t));
    }
  }
  ResultsWriter w(path, "c0ffee");
  EXPECT_EQ(w.size(), 7u);
  for (int t = -1; t < 6; ++t) EXPECT_TRUE(w.done("f16", 1e-5, t)) << t;
  EXPECT_FALSE(w.done("f16", 1e-5, 6));
  EXPECT_FALSE(w.done("f32", 1e-5, 0));
  EXPECT_FALSE(w.done("f16", 1e-4, 0));
  // The BER from the command line and from the file are the same double.
  EXPECT_TRUE(w.done("f16", parse_ber_list("1e-5")[0], 0));
  w.append(make_record(6));
  recs.push_back(make_record(6));
  EXPECT_EQ(read_results(path), recs);
}

TEST(ResultsWriter, RefusesAnotherCampaign) {
  const std::string path = temp_dir() + "/r.jsonl";
  write_text(path, to_json_line(make_record(0)) + "\n");
  expect_error([&] { ResultsWriter(path, "beef"); }, path + ":1: ", "another campaign (id c0ffee");
  expect_error([&] { ResultsWriter(path, "beef"); }, path, "use another --out");
  ResultsWriter w(path, "c0ffee");
  TrialRecord other = make_record(1);
  other.campaign = "beef";
  EXPECT_THROW(w.append(other), Error);
  EXPECT_EQ(read_results(path).size(), 1u);
}

TEST(ResultsWriter, TornLastLineIsRemovedAndNoRecordLost) {
  const std::string path = temp_dir() + "/r.jsonl";
  std::string text;
  std::vector<TrialRecord> recs;
  for (int t = -1; t < 3; ++t) {
    recs.push_back(make_record(t));
    text += to_json_line(recs.back()) + "\n";
  }
  const std::string torn = to_json_line(make_record(3));
  write_text(path, text + torn.substr(0, torn.size() / 3));
  ::testing::internal::CaptureStderr();
  {
    ResultsWriter w(path, "c0ffee");
    EXPECT_EQ(read_text(path), text);  // exactly the complete records, byte for byte
    EXPECT_FALSE(w.done("f16", 1e-5, 3));
    w.append(make_record(3));
  }
  ::testing::internal::GetCapturedStderr();
  recs.push_back(make_record(3));
  EXPECT_EQ(read_results(path), recs);

  // An unterminated but complete record is kept and given its newline.
  write_text(path, text + torn);
  ::testing::internal::CaptureStderr();
  {
    ResultsWriter w(path, "c0ffee");
    EXPECT_TRUE(w.done("f16", 1e-5, 3));
  }
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(read_text(path), text + torn + "\n");
}

TEST(ResultsWriter, ConcurrentAppendsAreWholeLines) {
  const std::string path = temp_dir() + "/r.jsonl";
  ResultsWriter w(path, "c0ffee");
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&w, k] {
      for (int i = 0; i < 20; ++i) w.append(make_record(k * 20 + i));
    });
  for (auto& t : threads) t.join();
  auto got = read_results(path);
  ASSERT_EQ(got.size(), 80u);
  std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.trial < b.trial; });
  for (int t = 0; t < 80; ++t) {
    EXPECT_EQ(got[static_cast<std::size_t>(t)], make_record(t));
    EXPECT_TRUE(w.done("f16", 1e-5, t));
  }
}

// The holder of a results file, in a child process: takes the writer, appends trial 0, says so
// on `ready`, and waits to be killed.
pid_t spawn_holder(const std::string& path, int* ready_fd) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    char ok = 'E';
    try {
      ResultsWriter w(path, "c0ffee");
      w.append(make_record(0));
      ok = 'Y';
      if (::write(fds[1], &ok, 1) != 1) ::_exit(1);
      for (;;) ::pause();
    } catch (...) {
      if (::write(fds[1], &ok, 1) != 1) ::_exit(1);
      ::_exit(1);
    }
  }
  ::close(fds[1]);
  *ready_fd = fds[0];
  return pid;
}

TEST(ResultsWriter, SecondWriterInThisProcessIsRefused) {
  const std::string path = temp_dir() + "/r.jsonl";
  {
    ResultsWriter first(path, "c0ffee");
    first.append(make_record(0));
    expect_error([&] { ResultsWriter second(path, "c0ffee"); }, path,
                 "another writer (process " + std::to_string(::getpid()) + ")");
    expect_error([&] { ResultsWriter second(path, "c0ffee"); }, path, "must not share one --out");
    first.append(make_record(1));
  }
  ResultsWriter again(path, "c0ffee");  // released with the first writer
  EXPECT_TRUE(again.done("f16", 1e-5, 1));
  EXPECT_EQ(read_results(path).size(), 2u);
}

TEST(ResultsWriter, WriterInAnotherProcessIsRefusedUntilItIsKilled) {
  const std::string path = temp_dir() + "/r.jsonl";
  int ready = -1;
  const pid_t child = spawn_holder(path, &ready);
  ASSERT_GT(child, 0);
  char got = 0;
  ASSERT_EQ(::read(ready, &got, 1), 1);
  ::close(ready);
  ASSERT_EQ(got, 'Y');
  expect_error([&] { ResultsWriter second(path, "c0ffee"); }, path,
               "another writer (process " + std::to_string(child) + ")");
  EXPECT_EQ(read_results(path).size(), 1u);  // the refused writer changed nothing
  // SIGKILL runs no handler and no destructor: the kernel alone drops the lock.
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(fs::exists(path + ".lock"));  // left behind, and no obstacle
  ResultsWriter w(path, "c0ffee");
  EXPECT_TRUE(w.done("f16", 1e-5, 0));
  w.append(make_record(1));
  EXPECT_EQ(read_results(path), (std::vector<TrialRecord>{make_record(0), make_record(1)}));
}

std::vector<TrialRecord> campaign_records() {
  std::vector<TrialRecord> all;
  for (const std::string dtype : {"f32", "fixed2.5"})
    for (double ber : {1e-4, 1e-6})
      for (int t = -1; t < 10; ++t) all.push_back(make_record(t, dtype, ber));
  return all;
}

// Writes the records shard by shard, as `--shard k/n` runs would, in scrambled order.
std::vector<std::string> write_shards(const std::string& dir, int n) {
  std::vector<std::string> paths;
  const auto all = campaign_records();
  for (int k = 0; k < n; ++k) {
    paths.push_back(dir + "/shard" + std::to_string(k) + ".jsonl");
    ResultsWriter w(paths.back(), "c0ffee");
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      if (!Shard{k, n}.owns(it->trial)) continue;
      TrialRecord r = *it;
      r.seconds = 10.0 + k;  // timing differs between shards, results do not
      w.append(r);
    }
  }
  return paths;
}

TEST(ResultsMerge, UnionSortedWithCleanRunsDeduplicated) {
  const std::string dir = temp_dir();
  const auto shards = write_shards(dir, 3);
  merge_results(shards, dir + "/all.jsonl");
  const auto got = read_results(dir + "/all.jsonl");
  auto want = campaign_records();
  std::sort(want.begin(), want.end(), [](const TrialRecord& a, const TrialRecord& b) {
    return std::tie(a.dtype, a.ber, a.trial) < std::tie(b.dtype, b.ber, b.trial);
  });
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(same_result(got[i], want[i])) << i;
    // Shard 0 owns the clean runs too and comes first, so every record keeps its own time
    // except clean runs, which keep the first shard's.
    EXPECT_EQ(got[i].seconds,
              want[i].trial < 0 ? 10.0 : 10.0 + static_cast<double>(want[i].trial % 3));
  }
  // Merging the merged file with a shard changes nothing: duplicates agree.
  merge_results({dir + "/all.jsonl", shards[1]}, dir + "/again.jsonl");
  EXPECT_EQ(read_text(dir + "/again.jsonl"), read_text(dir + "/all.jsonl"));
}

// Shards that ran on different kinds of device merge only when allowed; records that name no device
// (from before records named it) go with any.
TEST(ResultsMerge, MixedDevicesRefusedUnlessAllowed) {
  const std::string dir = temp_dir();
  std::vector<std::string> paths;
  std::size_t trials = 0;
  for (int k = 0; k < 3; ++k) {
    paths.push_back(dir + "/shard" + std::to_string(k) + ".jsonl");
    ResultsWriter w(paths.back(), "c0ffee");
    for (TrialRecord r : campaign_records())
      if (r.trial >= 0 && Shard{k, 3}.owns(r.trial)) {
        r.device = k == 0 ? "cuda" : k == 1 ? "" : "cpu";
        w.append(r);
        ++trials;
      }
  }
  merge_results({paths[0], paths[1]}, dir + "/one.jsonl");
  expect_error([&] { merge_results(paths, dir + "/all.jsonl"); }, paths[2] + ":",
               ": ran on cpu but " + paths[0] + ":1 ran on cuda");
  EXPECT_FALSE(fs::exists(dir + "/all.jsonl"));
  try {
    merge_results(paths, dir + "/all.jsonl");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--allow-mixed-devices"), std::string::npos) << e.what();
  }
  merge_results(paths, dir + "/all.jsonl", true);
  EXPECT_EQ(read_results(dir + "/all.jsonl").size(), trials);
  // One device in two math modes is two runs as well; fp32 is the device's plain mode.
  for (int k = 0; k < 2; ++k) {
    ResultsWriter w(dir + "/math" + std::to_string(k) + ".jsonl", "c0ffee");
    for (TrialRecord r : campaign_records())
      if (r.trial >= 0 && Shard{k, 2}.owns(r.trial)) {
        r.device = "cuda";
        r.math = k == 0 ? "fp32" : "bf16";
        w.append(r);
      }
  }
  expect_error([&] { merge_results({dir + "/math0.jsonl", dir + "/math1.jsonl"}, dir + "/math.jsonl"); },
               dir + "/math1.jsonl:", ": ran on cuda bf16 but " + dir + "/math0.jsonl:1 ran on cuda");
  merge_results({dir + "/math0.jsonl", paths[0]}, dir + "/math.jsonl");
}

TEST(ResultsMerge, ConflictingDuplicateIsAnError) {
  const std::string dir = temp_dir();
  const auto shards = write_shards(dir, 2);
  TrialRecord r = make_record(4, "f32", 1e-4);
  r.top1 += 0.01;
  append_line_durable(shards[1], to_json_line(r));  // trial 4 belongs to shard 0
  expect_error([&] { merge_results(shards, dir + "/all.jsonl"); }, shards[1] + ":",
               "conflicts with " + shards[0]);
  EXPECT_FALSE(fs::exists(dir + "/all.jsonl"));
}

// A trial recorded by an older writer (no nonfinite_logits) and again by a newer one is one
// result, and the merge keeps the count, whichever file comes first.
// Merges a file holding `less` with one holding `more`, two copies of one trial, in both orders:
// each result is `more`.
void expect_merge_keeps(const TrialRecord& less, const TrialRecord& more) {
  const std::string dir = temp_dir();
  write_text(dir + "/less.jsonl", to_json_line(less) + "\n");
  write_text(dir + "/more.jsonl", to_json_line(more) + "\n");
  merge_results({dir + "/less.jsonl", dir + "/more.jsonl"}, dir + "/a.jsonl");
  merge_results({dir + "/more.jsonl", dir + "/less.jsonl"}, dir + "/b.jsonl");
  EXPECT_EQ(read_results(dir + "/a.jsonl"), std::vector<TrialRecord>{more});
  EXPECT_EQ(read_results(dir + "/b.jsonl"), std::vector<TrialRecord>{more});
}

TEST(ResultsMerge, DuplicateWithoutNonfiniteLogitsTakesTheKnownCount) {
  TrialRecord old = make_record(4, "f32", 1e-4);
  old.nonfinite_logits = -1;
  expect_merge_keeps(old, make_record(4, "f32", 1e-4));
}

// A trial written by a run without --until-ci and again by the run that stopped its cell there is
// one result; the merge keeps the stop, whichever file comes first.
TEST(ResultsMerge, DuplicateKeepsTheStopFields) {
  TrialRecord stop = make_record(4, "f32", 1e-4);
  stop.until_ci = 0.5;
  stop.min_trials = 3;
  stop.max_trials = 100;
  expect_merge_keeps(make_record(4, "f32", 1e-4), stop);
}

TEST(ResultsMerge, RefusesMixedCampaignsMissingInputsAndOverwritingAnInput) {
  const std::string dir = temp_dir();
  const auto shards = write_shards(dir, 2);
  TrialRecord r = make_record(100);
  r.campaign = "beef";
  write_text(dir + "/other.jsonl", to_json_line(r) + "\n");
  expect_error(
      [&] {
        merge_results({shards[0], dir + "/other.jsonl"}, dir + "/all.jsonl");
      },
      dir + "/other.jsonl:1: ", "refusing to mix");
  expect_error(
      [&] {
        merge_results({shards[0], dir + "/nope.jsonl"}, dir + "/all.jsonl");
      },
      dir + "/nope.jsonl", "not found");
  const std::string before = read_text(shards[1]);
  expect_error([&] { merge_results(shards, dir + "/./shard1.jsonl"); }, dir + "/./shard1.jsonl",
               "refusing to overwrite");
  EXPECT_EQ(read_text(shards[1]), before);
  EXPECT_THROW(merge_results({}, dir + "/all.jsonl"), Error);
}

TEST(ResultsShard, ParsesAndPartitionsTrials) {
  const Shard s = parse_shard("2/5");
  EXPECT_EQ(s.k, 2);
  EXPECT_EQ(s.n, 5);
  EXPECT_EQ(parse_shard("0/1").n, 1);
  for (const char* bad : {"5/5", "-1/4", "a/b", "1/0", "3", "", "1/2/3", "/4", "1/", " 1/4",
                          "99999999999/99999999999"}) {
    SCOPED_TRACE(bad);
    expect_error([&] { parse_shard(bad); }, "--shard '" + std::string(bad) + "'", "");
  }
  for (int n = 1; n <= 5; ++n)
    for (std::int64_t t = -1; t < 50; ++t) {
      int owners = 0;
      for (int k = 0; k < n; ++k) owners += Shard{k, n}.owns(t) ? 1 : 0;
      EXPECT_EQ(owners, t < 0 ? n : 1) << t << " of " << n;
      EXPECT_TRUE(t < 0 || (Shard{static_cast<int>(t % n), n}.owns(t)));
    }
}

TEST(ResultsShard, TakesTheShardFromTheSlurmArrayTask) {
  std::map<std::string, std::string> vars;
  const EnvLookup env = [&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  expect_error([&] { parse_shard("slurm", env); }, "--shard 'slurm': SLURM_ARRAY_TASK_ID is not set",
               "not a task of a Slurm job array");
  expect_error([&] { parse_shard("slurm/4", env); }, "--shard 'slurm/4': SLURM_ARRAY_TASK_ID is not set", "");
  // --array=1-4: tasks 1..4 are shards 0..3 of 4.
  vars = {{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_COUNT", "4"}};
  EXPECT_EQ(parse_shard("slurm", env).k, 2);
  EXPECT_EQ(parse_shard("slurm", env).n, 4);
  // --array=1,3 resubmitting two of 4 shards: the array's own count says nothing, N does.
  vars = {{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_MIN", "1"}, {"SLURM_ARRAY_TASK_COUNT", "2"}};
  expect_error([&] { parse_shard("slurm", env); }, "--shard 'slurm': task 2 of an array of 2 tasks",
               "give the shard count as --shard slurm/N");
  EXPECT_EQ(parse_shard("slurm/4", env).k, 3);
  EXPECT_EQ(parse_shard("slurm/4", env).n, 4);
  expect_error([&] { parse_shard("slurm/3", env); }, "--shard 'slurm/3': SLURM_ARRAY_TASK_ID=3", "is not a shard of 3");
  expect_error([&] { parse_shard("slurm/x", env); }, "--shard 'slurm/x'", "expected k/n");
  vars["SLURM_ARRAY_TASK_ID"] = "abc";
  expect_error([&] { parse_shard("slurm/4", env); }, "--shard 'slurm/4': SLURM_ARRAY_TASK_ID='abc'", "expected k/n");
  EXPECT_TRUE(shard_from_slurm("slurm"));
  EXPECT_TRUE(shard_from_slurm("slurm/16"));
  EXPECT_FALSE(shard_from_slurm("0/16"));
  EXPECT_FALSE(shard_from_slurm("slurmx"));
}

TEST(ResultsShard, NamesEachShardsFile) {
  EXPECT_EQ(shard_results_path("all.jsonl", Shard{3, 16}), "all.shard-03-of-16.jsonl");
  EXPECT_EQ(shard_results_path("runs/a.b/all.jsonl", Shard{0, 4}), "runs/a.b/all.shard-0-of-4.jsonl");
  EXPECT_EQ(shard_results_path("runs/a.b/results", Shard{9, 100}), "runs/a.b/results.shard-009-of-100");
  EXPECT_EQ(shard_results_path(".hidden", Shard{1, 2}), ".hidden.shard-1-of-2");
}

TEST(ResultsBer, ParsesListAndRejectsBadValues) {
  const auto v = parse_ber_list("1e-6,1e-5, 1e-4 ,0,1");
  EXPECT_EQ(v, (std::vector<double>{1e-6, 1e-5, 1e-4, 0, 1}));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"1.5", "outside [0, 1]"},
      {"-1e-5", "outside [0, 1]"},
      {"1e-5,abc", "item 2: 'abc' is not a number"},
      {"1e-5,,1e-4", "item 2: empty value"},
      {"", "empty value"},
      {"nan", "outside"},
      {"inf", "outside"},
      {"1e-5,1e-5", "listed twice"},
      {"1e-5x", "not a number"}};
  for (const auto& [text, what] : bad) {
    SCOPED_TRACE(text);
    expect_error([&] { parse_ber_list(text); }, "--ber '" + text + "'", what);
  }
}

}  // namespace
}  // namespace safnet
