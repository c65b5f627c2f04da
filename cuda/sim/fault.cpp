// SIGSEGV/SIGBUS handler for simulated kernels: names the kernel, block, thread and the region hit.
#include "cuda/sim/fault.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "cuda/sim/memory.h"
#include "cuda/sim/stacks.h"

namespace safnet::sim {
namespace {

struct sigaction g_old_segv;
struct sigaction g_old_bus;
constexpr std::size_t kAltStackSize = 64 * 1024;

void handler(int sig, siginfo_t* info, void*) {
  char where[320];
  if (!detail::describe_current_thread(where, sizeof where)) {
    // Not ours: put the previous handler back and let the access fault again into it.
    sigaction(sig, sig == SIGSEGV ? &g_old_segv : &g_old_bus, nullptr);
    return;
  }
  char what[256];
  const void* addr = info->si_addr;
  if (!describe_address(addr, what, sizeof what)) {
    if (in_stack_guard(addr))
      std::snprintf(what, sizeof what,
                    "stack overflow of the simulated thread (its fiber stack is %zu KiB; "
                    "raise SAFNET_SIM_STACK_KIB or shrink local arrays)",
                    fiber_stack_size() / 1024);
    else
      std::snprintf(what, sizeof what, "address %p is in no simulated allocation", addr);
  }
  char msg[700];
  int n = std::snprintf(msg, sizeof msg, "safnet sim: %s: invalid memory access: %s\n", where, what);
  if (n > 0) {
    ssize_t ignored = write(STDERR_FILENO, msg, static_cast<std::size_t>(n) < sizeof msg ? n : sizeof msg - 1);
    (void)ignored;
  }
  signal(SIGABRT, SIG_DFL);
  abort();
}

}  // namespace

void install_fault_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
  });
  thread_local bool have_alt_stack = false;
  if (!have_alt_stack) {
    stack_t current;
    if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0 &&
        current.ss_size >= kAltStackSize) {
      have_alt_stack = true;  // someone (e.g. a sanitizer) already gave this thread one
      return;
    }
    stack_t ss;
    // Mapped, not malloc'd: it lives as long as the thread may fault, and is no leak.
    void* m = mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    ss.ss_sp = m;
    ss.ss_size = kAltStackSize;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, nullptr) == 0) have_alt_stack = true;
  }
}

}  // namespace safnet::sim
