// Fiber stacks for simulated threads: one per thread slot of a block, each above a guard page,
// allocated once and reused by every block and launch.
#pragma once
#include <cstddef>

namespace safnet::sim {

constexpr unsigned kMaxThreadsPerBlock = 1024;

struct FiberStack {
  unsigned char* bottom;  // lowest usable byte; the guard page sits just below
  std::size_t size;       // usable bytes
};

// Stack of thread slot `i` (< kMaxThreadsPerBlock); maps it on first use.
const FiberStack& fiber_stack(unsigned i);
// Usable bytes per stack: 64 KiB (256 KiB under AddressSanitizer), or SAFNET_SIM_STACK_KIB.
std::size_t fiber_stack_size();
// True when `addr` lies in the guard page of a mapped stack (a simulated thread overflowed).
bool in_stack_guard(const void* addr);

}  // namespace safnet::sim
