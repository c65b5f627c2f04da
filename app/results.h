// Fault campaign results: one JSON line per trial, durable appends, resume, shards and merge.
#pragma once
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace safnet {

// One evaluation of a campaign. trial = -1 marks the clean (fault-free) evaluation.
struct TrialRecord {
  std::string campaign;  // hash of everything that defines the campaign; the caller computes it
  std::string model, saf, dtype;  // e.g. "resnet20", "tanh", "f16"
  double ber = 0;                 // in [0, 1]
  std::int64_t trial = 0;         // >= -1
  std::uint64_t seed = 0;
  std::int64_t flips = 0;      // >= 0
  double top1 = 0, top5 = 0;   // percent, in [0, 100]
  double loss = 0;             // may be NaN or +-inf when faults make the logits non-finite
  std::int64_t nonfinite = 0;  // non-finite weights read, >= 0
  double seconds = 0;          // >= 0
  // The kind of device the trial ran on: "cpu", "cuda" or "sim"; empty = unknown (files written
  // before the field existed lack it), and then written without the field. Accuracies on a GPU
  // may differ from the CPU's by a few images (its tanhf is not glibc's), so a file holds one kind
  // unless the campaign allowed mixing (faults --allow-mixed-devices).
  std::string device;
  // The math mode conv2d and linear ran in (cuda/math_mode.h): "fp32", "3xtf32", "tf32" or "bf16";
  // empty = unknown (files written before the field existed), and then written without the field.
  std::string math;
  // Images whose logits hold a NaN or infinity, >= 0; -1 = unknown. Files written before the
  // field existed lack it and read as -1; a record with -1 is written without the field.
  std::int64_t nonfinite_logits = -1;
  // Set only on the trial that stopped its (dtype, ber) cell early under `faults --until-ci`: the
  // 95% CI half-width of the mean top-1 over trials 0..trial fell to `until_ci` points or below,
  // with trial + 1 >= min_trials and trial + 1 < max_trials (the --trials of that run). All three
  // are 0 on every other record, which is written without them (files from before they existed).
  double until_ci = 0;
  std::int64_t min_trials = 0, max_trials = 0;
  bool stopped_cell() const { return until_ci > 0; }

  friend bool operator==(const TrialRecord&, const TrialRecord&) = default;
};

// The device kinds a record may name.
inline constexpr const char* kDeviceKinds[] = {"cpu", "cuda", "sim"};

// What a record ran on, as the report and merge tell runs apart: the device kind, with the math mode
// where it is not plain fp32 ("cuda tf32"); "" when the record does not say (older files).
std::string ran_on(const TrialRecord& r);

// Two evaluations of one trial agree on everything but `seconds`, `device` and `math` (NaN losses count as equal, and
// an unknown nonfinite_logits agrees with any count: the same trial from an older writer). The
// stop fields say why a run ended a cell there, not what the trial measured: they are not compared.
bool same_result(const TrialRecord& a, const TrialRecord& b);
// Of two copies of one trial that agree (same_result), `kept` takes what only `other` knows: the
// nonfinite_logits count of a newer writer, the stop fields of the run that stopped the cell there.
void absorb_duplicate(TrialRecord& kept, const TrialRecord& other);

// Throws if a field is out of its range above; `where` prefixes the message (path:line).
void validate_record(const TrialRecord& r, const std::string& where);

// One line, no '\n'. Non-finite loss is written as the string "nan", "inf" or "-inf" since
// JSON has no such numbers. Throws on a record that parse_record would reject.
std::string to_json_line(const TrialRecord& r);
// Parses one line; the error names path:line_no and the problem. Unknown, duplicate or
// missing fields are errors, so a typo never silently drops a value; only nonfinite_logits may
// be missing (files from before it existed), and then reads as -1, and the stop fields, which
// come all three or none.
TrialRecord parse_record(const std::string& line, const std::string& path, std::int64_t line_no);

// Reads a results file; a missing file reads as empty. A final line without '\n' (a write cut
// by a kill) is dropped with a warning on stderr, unless it is a complete valid record, which
// is kept. Every other malformed line is an error naming path:line. Blank lines are skipped.
std::vector<TrialRecord> read_results(const std::string& path);

// Appends the records of one campaign to a results file, and knows which are already there.
// One writer per file: it holds an advisory lock (flock) on PATH.lock, which records its
// process id, for its whole life; the kernel drops the lock when the process dies, however it
// dies, so a killed run never blocks the next one. The lock file stays behind, harmless.
class ResultsWriter {
 public:
  // Refuses a file another writer (in this process or another) holds, naming the file and the
  // holder's process id, and a file holding another campaign's records. A torn final line is
  // removed by an atomic rewrite of the complete records, so later appends never glue onto it.
  ResultsWriter(std::string path, std::string campaign);
  ~ResultsWriter();
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;

  bool done(const std::string& dtype, double ber, std::int64_t trial) const;
  std::size_t size() const;  // finished (dtype, ber, trial) keys
  // The device kinds the file's records name ("" for records that name none), as loaded.
  const std::set<std::string>& devices() const { return devices_; }
  // Likewise the math modes they name.
  const std::set<std::string>& maths() const { return maths_; }
  // Durable (fsync) and safe to call from several threads.
  void append(const TrialRecord& r);

  const std::string& path() const { return path_; }
  const std::string& campaign() const { return campaign_; }

 private:
  using Key = std::tuple<std::string, double, std::int64_t>;
  void load();  // the records already there, and the torn-line repair
  std::string path_, campaign_;
  std::set<Key> done_;
  std::set<std::string> devices_;
  std::set<std::string> maths_;
  mutable std::mutex mu_;
  int lock_fd_ = -1;  // PATH.lock, flock'ed for the writer's life
};

// Joins shard files of one campaign into `output` (written atomically), sorted by
// (dtype, ber, trial). Duplicates that agree on everything but `seconds` are kept once (the copy
// that knows more: a nonfinite_logits count, the stop fields); any other duplicate is an error.
// Refuses a missing input and an output that is an input, and records of two kinds of device
// (records that name none excepted) unless `allow_mixed_devices`.
void merge_results(const std::vector<std::string>& inputs, const std::string& output,
                   bool allow_mixed_devices = false);

// Deterministic split of trials: shard k of n owns trial t iff t % n == k. The clean
// evaluation (trial -1) belongs to every shard, so each shard file is self-contained.
struct Shard {
  int k = 0, n = 1;
  bool owns(std::int64_t trial) const;
};
}  // namespace safnet
