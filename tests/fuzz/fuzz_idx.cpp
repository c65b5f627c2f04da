// libFuzzer target: IDX parsing, with bounded gzip inflation when the input is gzip.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/idx.h"
#include "host/check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace safnet;
  std::vector<std::uint8_t> plain;
  if (is_gzip(data, size)) {
    try {
      plain = gunzip_idx(data, size, "fuzz");
    } catch (const Error&) {
      return 0;
    }
    data = plain.data();
    size = plain.size();
  }
  try {
    parse_idx_images(data, size, "fuzz");
  } catch (const Error&) {
  }
  try {
    parse_idx_labels(data, size, "fuzz", 10);
  } catch (const Error&) {
  }
  return 0;
}
