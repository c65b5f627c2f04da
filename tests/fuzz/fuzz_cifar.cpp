// libFuzzer target: CIFAR-10/100 record parsing and class-name files.
#include <cstddef>
#include <cstdint>
#include <string>

#include "data/cifar.h"
#include "host/check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace safnet;
  for (CifarKind kind : {CifarKind::cifar10, CifarKind::cifar100}) {
    try {
      Dataset d;
      parse_cifar(data, size, "fuzz", kind, d, static_cast<std::int64_t>(size & 1));
    } catch (const Error&) {
    }
  }
  try {
    parse_class_names(std::string(reinterpret_cast<const char*>(data), size), "fuzz", 10);
  } catch (const Error&) {
  }
  return 0;
}
