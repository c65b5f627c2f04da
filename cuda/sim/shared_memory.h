// What counts as shared memory on the simulator, for instructions that must write only there
// (cp.async): the launch's dynamic shared block, or static storage, where a `__shared__` array (a
// function-local `static`, cuda/sim/device.h) lives.
#pragma once
#include <cstddef>

namespace safnet::sim {

// True when [ptr, ptr + count) lies inside the dynamic shared block or inside one writable
// segment of the program or a loaded library (.data, .bss). Static storage also holds `__device__`
// globals and host globals, which this cannot tell from `__shared__` arrays; it does refuse
// device allocations, the heap and thread stacks (local memory).
bool is_shared_memory(const void* ptr, std::size_t count);

}  // namespace safnet::sim
