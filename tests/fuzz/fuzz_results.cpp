// Fuzz target: results records and files from arbitrary bytes; only safnet::Error may escape.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "host/check.h"
#include "app/results.h"

namespace {

// read_results warns on stderr about torn final lines; silence it so the fuzzer runs fast and
// its own reports stay readable.
struct QuietStderr {
  int saved = ::dup(2);
  QuietStderr() {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    ::close(null);
  }
  ~QuietStderr() {
    ::dup2(saved, 2);
    ::close(saved);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const safnet::TrialRecord r = safnet::parse_record(bytes, "fuzz.jsonl", 1);
    // Whatever parses must write and read back to the same result.
    const safnet::TrialRecord back = safnet::parse_record(safnet::to_json_line(r), "fuzz.jsonl", 1);
    // same_result lets an unknown nonfinite_logits (-1) match a count; a round trip must not.
    if (!safnet::same_result(r, back) || r.seconds != back.seconds || r.nonfinite_logits != back.nonfinite_logits)
      __builtin_trap();
  } catch (const safnet::Error&) {
  }
  // A plain write to memory-backed /dev/shm where there is one: on a disk, the durable helpers'
  // fsync and even truncating a file (ext4 flushes on close) make each run wait for the device.
  static const std::string path =
      std::string(::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/safnet_fuzz_results_" +
      std::to_string(::getpid()) + ".jsonl";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  try {
    QuietStderr quiet;
    for (const safnet::TrialRecord& r : safnet::read_results(path))
      if (safnet::parse_record(safnet::to_json_line(r), path, 1).campaign != r.campaign)
        __builtin_trap();
  } catch (const safnet::Error&) {
  }
  return 0;
}
