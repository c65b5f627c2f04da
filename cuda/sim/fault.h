// The simulator's fault handler: a SIGSEGV/SIGBUS inside a simulated kernel (guard page of an
// allocation, of dynamic shared memory or of a fiber stack) prints where it happened and aborts.
#pragma once
#include <cstddef>

namespace safnet::sim {

// Installs the handler once per process and an alternate signal stack once per calling thread
// (the fault may happen on a small fiber stack). Faults outside kernels go to the previous handler.
void install_fault_handler();

namespace detail {
// Writes "kernel 'name' block (x,y,z) thread (x,y,z)" for the running simulated thread; false when
// no kernel runs on this OS thread. Safe to call from the signal handler.
bool describe_current_thread(char* out, std::size_t out_size);
}  // namespace detail

}  // namespace safnet::sim
