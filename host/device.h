// Where a tensor's storage lives and which backend runs a graph: the CPU, a CUDA GPU, or the CUDA
// backend running on the simulator (cuda/sim), which exercises the whole GPU path on any machine.
#pragma once
#include <string>

namespace safnet {

enum class DeviceKind { cpu, cuda, sim };

struct Device {
  DeviceKind kind = DeviceKind::cpu;
  int index = 0;  // cuda:N

  // "cpu", "sim", "cuda" (= cuda:0) or "cuda:N"; anything else is an error listing them.
  static Device parse(const std::string& s);
  std::string str() const;
  bool is_cpu() const { return kind == DeviceKind::cpu; }
  bool operator==(const Device&) const = default;
};

}  // namespace safnet
