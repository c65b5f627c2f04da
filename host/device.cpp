// Device names.
#include "host/device.h"

#include <cctype>

#include "host/check.h"

namespace safnet {

Device Device::parse(const std::string& s) {
  if (s == "cpu") return {DeviceKind::cpu, 0};
  if (s == "sim") return {DeviceKind::sim, 0};
  if (s == "cuda") return {DeviceKind::cuda, 0};
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9) {
    bool digits = true;
    for (std::size_t i = 5; i < s.size(); ++i) digits = digits && std::isdigit(static_cast<unsigned char>(s[i]));
    if (digits) return {DeviceKind::cuda, std::stoi(s.substr(5))};
  }
  fail("unknown device '", s, "' (valid: cpu, cuda, cuda:N, sim)");
}

std::string Device::str() const {
  switch (kind) {
    case DeviceKind::cpu: return "cpu";
    case DeviceKind::sim: return "sim";
    case DeviceKind::cuda: return "cuda:" + std::to_string(index);
  }
  return "?";
}

}  // namespace safnet
