// Fuzz target: parse_safetensors never reads out of bounds, and what it accepts survives a write and reread.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <vector>

#include "host/check.h"
#include "host/safetensors.h"

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_safetensors: %s\n", what);
  std::abort();
}

bool same(const safnet::SafetensorsFile& a, const safnet::SafetensorsFile& b) {
  if (a.tensors.size() != b.tensors.size() || a.metadata != b.metadata) return false;
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const safnet::Tensor& x = a.tensors[i].second;
    const safnet::Tensor& y = b.tensors[i].second;
    if (a.tensors[i].first != b.tensors[i].first || !(x.dtype() == y.dtype()) || x.shape() != y.shape())
      return false;
    if (x.nbytes() != y.nbytes() || (x.nbytes() && std::memcmp(x.raw(), y.raw(), x.nbytes()) != 0)) return false;
  }
  return true;
}

// Parses one candidate file; if accepted, writes and rereads it and checks nothing changed.
void check(const std::uint8_t* data, std::size_t size) {
  safnet::SafetensorsFile first;
  try {
    first = safnet::parse_safetensors(data, size, "fuzz input");
  } catch (const safnet::Error&) {
    return;  // rejected with a message: the expected outcome for most inputs
  }
  std::vector<std::uint8_t> bytes;
  safnet::SafetensorsFile second;
  try {
    bytes = safnet::serialize_safetensors(first);
    second = safnet::parse_safetensors(bytes.data(), bytes.size(), "fuzz rewrite");
  } catch (const safnet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    die("an accepted file failed to write or reread");
  }
  if (!same(first, second)) die("reread differs from the first parse");
  // The writer's output is canonical: writing it again gives the same bytes.
  if (safnet::serialize_safetensors(second) != bytes) die("second write differs from the first");
}

}  // namespace

// Each input is tried twice: as a file, and as "header JSON, NUL, buffer" with the length prefix
// computed, so that mutations of the header text keep reaching the checks past the length.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check(data, size);
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(data, 0, size));
  if (nul) {
    const std::uint64_t n = static_cast<std::uint64_t>(nul - data);
    std::vector<std::uint8_t> file(8);
    for (int i = 0; i < 8; ++i) file[i] = static_cast<std::uint8_t>(n >> (8 * i));
    file.insert(file.end(), data, nul);
    file.insert(file.end(), nul + 1, data + size);
    check(file.data(), file.size());
  }
  return 0;
}
