// Fault campaign results: record JSON, reading with torn-line recovery, resume, merge, shards.
#include "app/results.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>

#include "cuda/math_mode.h"
#include "host/check.h"
#include "host/file_io.h"

namespace safnet {

namespace {

using ojson = nlohmann::ordered_json;

std::string where_of(const std::string& path, std::int64_t line_no) {
  return path + ":" + std::to_string(line_no);
}

bool finite_in(double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; }

// JSON has no NaN/inf; a faulted network's loss can be either, so they travel as strings.
std::string nonfinite_name(double v) {
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

enum class Field {
  campaign,
  model,
  saf,
  dtype,
  ber,
  trial,
  seed,
  flips,
  top1,
  top5,
  loss,
  nonfinite,
  seconds,
  nonfinite_logits,  // optional: absent from files written before it existed
  until_ci,          // optional, all three or none: only on the trial that stopped its cell
  min_trials,
  max_trials,
  device,  // optional: absent from files written before it existed
  math,    // optional, likewise
  count
};
constexpr const char* kFieldNames[] = {"campaign",   "model",     "saf",     "dtype",            "ber",
                                       "trial",      "seed",      "flips",   "top1",             "top5",
                                       "loss",       "nonfinite", "seconds", "nonfinite_logits", "until_ci",
                                       "min_trials", "max_trials", "device",    "math"};
static_assert(std::size(kFieldNames) == static_cast<std::size_t>(Field::count));

std::string field_list() {
  std::string s;
  for (const char* f : kFieldNames) s += (s.empty() ? "" : ", ") + std::string(f);
  return s;
}

// A name from the file, safe to put in a one-line message.
std::string printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 80)) out += (c >= 0x20 && c != 0x7f) || c < 0 ? c : '?';
  return s.size() > 80 ? out + "..." : out;
}

// Builds a record straight from parser events: the record is one flat object, so any nesting
// is rejected at once (no deep trees are ever built from hostile input).
class RecordSax : public nlohmann::json_sax<nlohmann::json> {
 public:
  TrialRecord rec;
  std::string error;  // first problem found
  bool seen[static_cast<std::size_t>(Field::count)] = {};

  bool null() override { return bad_value("null"); }
  bool boolean(bool) override { return bad_value("a boolean"); }
  bool binary(binary_t&) override { return bad_value("binary"); }
  bool start_array(std::size_t) override { return bad_value("an array"); }
  bool end_array() override { return bad_value("an array"); }

  bool start_object(std::size_t) override {
    if (depth_ != 0) return bad_value("an object");
    depth_ = 1;
    return true;
  }
  bool end_object() override {
    depth_ = 2;  // anything after the closing brace is a nested or second value
    return true;
  }
  bool key(string_t& k) override {
    auto it = std::find(std::begin(kFieldNames), std::end(kFieldNames), k);
    if (it == std::end(kFieldNames))
      return set_error("unknown field '" + printable(k) + "' (fields: " + field_list() + ")");
    const std::size_t i = static_cast<std::size_t>(it - std::begin(kFieldNames));
    if (seen[i]) return set_error("field '" + k + "' appears twice");
    seen[i] = true;
    field_ = static_cast<Field>(i);
    return true;
  }
  bool string(string_t& s) override {
    if (!in_value()) return bad_value("a string");
    switch (field_) {
      case Field::campaign:
        rec.campaign = s;
        return true;
      case Field::model:
        rec.model = s;
        return true;
      case Field::saf:
        rec.saf = s;
        return true;
      case Field::dtype:
        rec.dtype = s;
        return true;
      case Field::device:
        if (s.empty()) return set_error("field 'device' is empty (omit it when unknown)");
        rec.device = s;
        return true;
      case Field::math:
        if (s.empty()) return set_error("field 'math' is empty (omit it when unknown)");
        rec.math = s;
        return true;
      case Field::loss:
        if (s == "nan")
          rec.loss = std::numeric_limits<double>::quiet_NaN();
        else if (s == "inf")
          rec.loss = std::numeric_limits<double>::infinity();
        else if (s == "-inf")
          rec.loss = -std::numeric_limits<double>::infinity();
        else
          return set_error("field 'loss' must be a number or \"nan\", \"inf\", \"-inf\"");
        return true;
      default:
        return bad_value("a string");
    }
  }
  bool number_integer(number_integer_t v) override {
    if (!in_value()) return bad_value("a number");
    if (is_double_field()) return set_double(static_cast<double>(v));
    if (field_ == Field::seed) {
      if (v < 0) return set_error("field 'seed' must be >= 0");
      rec.seed = static_cast<std::uint64_t>(v);
      return true;
    }
    if (is_int_field()) return set_int(v);
    return bad_value("a number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (!in_value()) return bad_value("a number");
    if (is_double_field()) return set_double(static_cast<double>(v));
    if (field_ == Field::seed) {
      rec.seed = v;
      return true;
    }
    if (is_int_field()) {
      if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return set_error("field '" + name() + "' is too large");
      return set_int(static_cast<std::int64_t>(v));
    }
    return bad_value("a number");
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (!in_value()) return bad_value("a number");
    if (is_double_field()) return set_double(v);
    if (field_ == Field::seed || is_int_field())
      return set_error("field '" + name() + "' must be an integer");
    return bad_value("a number");
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    // nlohmann's message starts with "[json.exception.parse_error.101] "; keep the rest.
    std::string msg = e.what();
    const auto close = msg.find("] ");
    if (close != std::string::npos) msg = msg.substr(close + 2);
    // The record is one line, already named by the caller; the column is what helps.
    const auto line1 = msg.find("at line 1, column");
    if (line1 != std::string::npos) msg.erase(line1 + 3, 8);
    return set_error("invalid JSON: " + msg);
  }

 private:
  int depth_ = 0;  // 0 before the object, 1 inside it, 2 after it
  Field field_ = Field::count;

  std::string name() const { return kFieldNames[static_cast<std::size_t>(field_)]; }
  bool in_value() const { return depth_ == 1 && field_ != Field::count; }
  bool is_double_field() const {
    return field_ == Field::ber || field_ == Field::top1 || field_ == Field::top5 ||
           field_ == Field::loss || field_ == Field::seconds || field_ == Field::until_ci;
  }
  bool is_int_field() const {
    return field_ == Field::trial || field_ == Field::flips || field_ == Field::nonfinite ||
           field_ == Field::nonfinite_logits || field_ == Field::min_trials || field_ == Field::max_trials;
  }
  bool set_error(const std::string& e) {
    if (error.empty()) error = e;
    return false;
  }
  bool bad_value(const char* what) {
    if (depth_ != 1) return set_error("a record must be one flat JSON object");
    if (field_ == Field::count) return set_error("value without a field name");
    return set_error("field '" + name() + "' must not be " + what);
  }
  bool set_double(double v) {
    switch (field_) {
      case Field::ber:
        rec.ber = v;
        break;
      case Field::top1:
        rec.top1 = v;
        break;
      case Field::top5:
        rec.top5 = v;
        break;
      case Field::loss:
        rec.loss = v;
        break;
      case Field::seconds:
        rec.seconds = v;
        break;
      case Field::until_ci:
        rec.until_ci = v;
        break;
      default:
        return bad_value("a number");
    }
    return true;
  }
  bool set_int(std::int64_t v) {
    switch (field_) {
      case Field::trial:
        rec.trial = v;
        break;
      case Field::flips:
        rec.flips = v;
        break;
      case Field::nonfinite:
        rec.nonfinite = v;
        break;
      case Field::nonfinite_logits:
        if (v < 0) return set_error("field 'nonfinite_logits' must be >= 0 (omit it when unknown)");
        rec.nonfinite_logits = v;
        break;
      case Field::min_trials:
        rec.min_trials = v;
        break;
      case Field::max_trials:
        rec.max_trials = v;
        break;
      default:
        return bad_value("a number");
    }
    return true;
  }
};

struct Line {
  std::string text;
  std::int64_t no = 0;
};

// Splits into '\n'-terminated lines; an unterminated tail goes to `tail` (empty if none).
std::vector<Line> split_lines(const std::vector<std::uint8_t>& bytes, Line& tail) {
  std::vector<Line> lines;
  std::size_t start = 0;
  std::int64_t no = 1;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != '\n') continue;
    lines.push_back({std::string(bytes.begin() + static_cast<std::ptrdiff_t>(start),
                                 bytes.begin() + static_cast<std::ptrdiff_t>(i)),
                     no++});
    start = i + 1;
  }
  tail = {std::string(bytes.begin() + static_cast<std::ptrdiff_t>(start), bytes.end()), no};
  return lines;
}

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

struct NumberedRecord {
  TrialRecord rec;
  std::int64_t line_no = 0;
};

struct FileContents {
  std::vector<NumberedRecord> records;
  bool torn = false;       // the file does not end with '\n'
  bool tail_kept = false;  // the unterminated tail was a complete record
};

FileContents read_numbered(const std::string& path) {
  FileContents out;
  if (!file_exists(path)) return out;
  Line tail;
  const std::vector<Line> lines = split_lines(read_file(path), tail);
  for (const Line& l : lines) {
    if (is_blank(l.text)) continue;
    out.records.push_back({parse_record(l.text, path, l.no), l.no});
  }
  if (tail.text.empty()) return out;
  out.torn = true;
  try {
    out.records.push_back({parse_record(tail.text, path, tail.no), tail.no});
    out.tail_kept = true;
    std::cerr << "warning: " << where_of(path, tail.no)
              << ": final line has no newline; it is a complete record and is kept\n";
  } catch (const Error& e) {
    std::cerr << "warning: " << where_of(path, tail.no)
              << ": incomplete final line (a write cut short?) is ignored: " << e.what() << "\n";
  }
  return out;
}

// Loss may be NaN, which never equals itself; duplicates must still compare equal.
bool same_double(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

bool same_file(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool eq = fs::equivalent(a, b, ec);
    if (!ec) return eq;
  }
  std::error_code ea, eb;
  const fs::path ca = fs::weakly_canonical(a, ea), cb = fs::weakly_canonical(b, eb);
  if (ea || eb) return a == b;
  return ca == cb;
}

// Takes PATH.lock for this writer and writes our process id into it; refuses when another
// open description of it (another writer, here or in another process) holds the lock.
int lock_results(const std::string& path) {
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail(lock_path, ": cannot open the results lock file: ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t got = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) fail(lock_path, ": cannot lock: ", std::strerror(err));
    std::string pid = got > 0 ? std::string(buf, static_cast<std::size_t>(got)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    fail(path, ": another writer (process ", pid.empty() ? std::string("unknown") : printable(pid),
         ") is writing these results (lock ", lock_path, "); two campaigns must not share one --out");
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const int err = errno;
    ::close(fd);
    fail(lock_path, ": cannot write the results lock file: ", std::strerror(err));
  }
  return fd;
}

}  // namespace

bool same_result(const TrialRecord& a, const TrialRecord& b) {
  return a.campaign == b.campaign && a.model == b.model && a.saf == b.saf && a.dtype == b.dtype &&
         a.ber == b.ber && a.trial == b.trial && a.seed == b.seed && a.flips == b.flips &&
         a.top1 == b.top1 && a.top5 == b.top5 && same_double(a.loss, b.loss) &&
         a.nonfinite == b.nonfinite &&
         (a.nonfinite_logits == b.nonfinite_logits || a.nonfinite_logits == -1 || b.nonfinite_logits == -1);
}

void absorb_duplicate(TrialRecord& kept, const TrialRecord& other) {
  if (kept.nonfinite_logits == -1) kept.nonfinite_logits = other.nonfinite_logits;  // an older writer knew less
  if (kept.device.empty()) kept.device = other.device;
  if (kept.math.empty()) kept.math = other.math;
  if (!kept.stopped_cell() && other.stopped_cell()) {  // the copy of the run that stopped the cell there
    kept.until_ci = other.until_ci;
    kept.min_trials = other.min_trials;
    kept.max_trials = other.max_trials;
  }
}

void validate_record(const TrialRecord& r, const std::string& where) {
  if (r.campaign.empty()) fail(where, ": field 'campaign' is empty");
  if (r.dtype.empty()) fail(where, ": field 'dtype' is empty");
  if (!finite_in(r.ber, 0, 1)) fail(where, ": field 'ber' is ", r.ber, ", must be in [0, 1]");
  if (r.trial < -1) fail(where, ": field 'trial' is ", r.trial, ", must be >= -1 (-1: clean run)");
  if (r.flips < 0) fail(where, ": field 'flips' is ", r.flips, ", must be >= 0");
  if (r.nonfinite < 0) fail(where, ": field 'nonfinite' is ", r.nonfinite, ", must be >= 0");
  if (r.nonfinite_logits < -1)
    fail(where, ": field 'nonfinite_logits' is ", r.nonfinite_logits, ", must be >= 0 (or -1: unknown)");
  if (!finite_in(r.top1, 0, 100))
    fail(where, ": field 'top1' is ", r.top1, ", must be in [0, 100]");
  if (!finite_in(r.top5, 0, 100))
    fail(where, ": field 'top5' is ", r.top5, ", must be in [0, 100]");
  if (!finite_in(r.seconds, 0, std::numeric_limits<double>::max()))
    fail(where, ": field 'seconds' is ", r.seconds, ", must be finite and >= 0");
  if (!r.device.empty() && std::find(std::begin(kDeviceKinds), std::end(kDeviceKinds), r.device) == std::end(kDeviceKinds))
    fail(where, ": field 'device' is '", printable(r.device), "' (valid: cpu, cuda, sim)");
  if (!r.math.empty() && !math_mode_from_name(r.math))
    fail(where, ": field 'math' is '", printable(r.math), "' (valid: fp32, 3xtf32, tf32, bf16)");
  if (r.until_ci == 0 && r.min_trials == 0 && r.max_trials == 0) return;
  // The stop fields: this trial ended its cell early, so the cell holds trials 0..trial.
  if (!finite_in(r.until_ci, 0, std::numeric_limits<double>::max()) || r.until_ci == 0)
    fail(where, ": field 'until_ci' is ", r.until_ci, ", must be finite and > 0");
  if (r.min_trials < 2) fail(where, ": field 'min_trials' is ", r.min_trials, ", must be >= 2");
  if (r.trial + 1 < r.min_trials)
    fail(where, ": trial ", r.trial, " stopped its cell before min_trials ", r.min_trials);
  if (r.max_trials <= r.trial + 1)
    fail(where, ": field 'max_trials' is ", r.max_trials, ", must be > trial + 1 (", r.trial + 1,
         ") on the trial that stopped its cell early");
}

std::string to_json_line(const TrialRecord& r) {
  validate_record(r, "results record");
  ojson j;
  j["campaign"] = r.campaign;
  j["model"] = r.model;
  j["saf"] = r.saf;
  j["dtype"] = r.dtype;
  j["ber"] = r.ber;
  j["trial"] = r.trial;
  j["seed"] = r.seed;
  j["flips"] = r.flips;
  j["top1"] = r.top1;
  j["top5"] = r.top5;
  if (std::isfinite(r.loss))
    j["loss"] = r.loss;
  else
    j["loss"] = nonfinite_name(r.loss);
  j["nonfinite"] = r.nonfinite;
  j["seconds"] = r.seconds;
  if (!r.device.empty()) j["device"] = r.device;
  if (!r.math.empty()) j["math"] = r.math;
  if (r.nonfinite_logits >= 0) j["nonfinite_logits"] = r.nonfinite_logits;
  if (r.stopped_cell()) {
    j["until_ci"] = r.until_ci;
    j["min_trials"] = r.min_trials;
    j["max_trials"] = r.max_trials;
  }
  try {
    return j.dump();  // shortest text that reads back to the same doubles
  } catch (const nlohmann::json::exception& e) {
    fail("results record: cannot write as JSON (strings must be UTF-8): ", e.what());
  }
}

TrialRecord parse_record(const std::string& line, const std::string& path, std::int64_t line_no) {
  const std::string where = where_of(path, line_no);
  RecordSax sax;
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(line, &sax);
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": invalid JSON: ", e.what());
  }
  if (!ok || !sax.error.empty())
    fail(where, ": ", sax.error.empty() ? std::string("invalid JSON") : sax.error);
  constexpr auto first_optional = static_cast<std::size_t>(Field::nonfinite_logits);
  for (std::size_t i = 0; i < first_optional; ++i)
    if (!sax.seen[i]) fail(where, ": missing field '", kFieldNames[i], "'");
  const auto seen = [&](Field f) { return sax.seen[static_cast<std::size_t>(f)]; };
  const int stop_fields = seen(Field::until_ci) + seen(Field::min_trials) + seen(Field::max_trials);
  if (stop_fields != 0 && stop_fields != 3)
    fail(where, ": fields 'until_ci', 'min_trials' and 'max_trials' go together (a cell stopped early)");
  validate_record(sax.rec, where);
  return sax.rec;
}

std::vector<TrialRecord> read_results(const std::string& path) {
  std::vector<TrialRecord> out;
  for (NumberedRecord& n : read_numbered(path).records) out.push_back(std::move(n.rec));
  return out;
}

ResultsWriter::ResultsWriter(std::string path, std::string campaign)
    : path_(std::move(path)), campaign_(std::move(campaign)) {
  if (campaign_.empty()) fail(path_, ": empty campaign id");
  lock_fd_ = lock_results(path_);
  try {
    load();
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
}

ResultsWriter::~ResultsWriter() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

void ResultsWriter::load() {
  const FileContents fc = read_numbered(path_);
  for (const NumberedRecord& n : fc.records) {
    if (n.rec.campaign != campaign_)
      fail(where_of(path_, n.line_no), ": ", path_, " holds results of another campaign (id ",
           printable(n.rec.campaign), ", this one is ", campaign_,
           "), refusing to mix; use another --out");
    done_.insert({n.rec.dtype, n.rec.ber, n.rec.trial});
    devices_.insert(n.rec.device);
    maths_.insert(n.rec.math);
  }
  if (fc.torn) {
    // Rebuilt from the parsed records, so every complete one survives byte for byte in value.
    std::string text;
    for (const NumberedRecord& n : fc.records) text += to_json_line(n.rec) + "\n";
    write_file_atomic(path_, text);
  }
}

bool ResultsWriter::done(const std::string& dtype, double ber, std::int64_t trial) const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_.count({dtype, ber, trial}) != 0;
}

std::size_t ResultsWriter::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_.size();
}

void ResultsWriter::append(const TrialRecord& r) {
  if (r.campaign != campaign_)
    fail(path_, ": record of campaign ", r.campaign, " appended to campaign ", campaign_);
  const std::string line = to_json_line(r);
  std::lock_guard<std::mutex> lock(mu_);
  append_line_durable(path_, line);
  done_.insert({r.dtype, r.ber, r.trial});
}

std::string ran_on(const TrialRecord& r) {
  return r.math.empty() || r.math == "fp32" || r.device.empty() ? r.device : r.device + " " + r.math;
}

void merge_results(const std::vector<std::string>& inputs, const std::string& output, bool allow_mixed_devices) {
  if (inputs.empty()) fail("merge: no input files");
  for (const std::string& in : inputs) {
    if (!file_exists(in)) fail(in, ": merge input not found");
    if (same_file(in, output))
      fail(output, ": merge output is also an input; refusing to overwrite it");
  }
  std::string campaign, campaign_src, device, device_src;
  using Key = std::tuple<std::string, double, std::int64_t>;
  std::map<Key, std::pair<TrialRecord, std::string>> merged;  // value: record, where it came from
  for (const std::string& in : inputs) {
    for (NumberedRecord& n : read_numbered(in).records) {
      const std::string where = where_of(in, n.line_no);
      if (campaign.empty()) {
        campaign = n.rec.campaign;
        campaign_src = where;
      } else if (n.rec.campaign != campaign) {
        fail(where, ": holds results of campaign ", printable(n.rec.campaign), " but ",
             campaign_src, " holds campaign ", printable(campaign), "; refusing to mix them");
      }
      const std::string on = ran_on(n.rec);
      if (!on.empty() && device.empty()) {
        device = on;
        device_src = where;
      } else if (!on.empty() && on != device && !allow_mixed_devices) {
        fail(where, ": ran on ", printable(on), " but ", device_src, " ran on ", printable(device),
             "; the two may differ by a few images, so a merged file holds one kind of device and math mode: "
             "merge each on its own (safnet report takes several files), or pass --allow-mixed-devices");
      }
      Key key{n.rec.dtype, n.rec.ber, n.rec.trial};
      auto it = merged.find(key);
      if (it == merged.end()) {
        merged.emplace(std::move(key), std::make_pair(std::move(n.rec), where));
      } else if (!same_result(it->second.first, n.rec)) {
        fail(where, ": conflicts with ", it->second.second, ": dtype ", printable(n.rec.dtype),
             " ber ", n.rec.ber, " trial ", n.rec.trial, " has different results");
      } else {
        absorb_duplicate(it->second.first, n.rec);
      }
    }
  }
  std::string text;
  for (const auto& [key, value] : merged) text += to_json_line(value.first) + "\n";
  write_file_atomic(output, text);
}

bool Shard::owns(std::int64_t trial) const {
  SAFNET_CHECK(n >= 1 && k >= 0 && k < n, "shard ", k, "/", n);
  if (trial == -1) return true;
  return trial >= 0 && trial % n == k;
}

}  // namespace safnet
