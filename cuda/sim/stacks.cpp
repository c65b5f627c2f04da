// Fiber stack pool: fixed table of lazily mapped stacks so the fault handler can read it lock-free.
#include "cuda/sim/stacks.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace safnet::sim {
namespace {

FiberStack g_stacks[kMaxThreadsPerBlock];  // only the launching thread (holding the launch lock) writes

std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

std::size_t compute_stack_size() {
#if defined(__SANITIZE_ADDRESS__)
  std::size_t kib = 256;
#else
  std::size_t kib = 64;
#endif
  if (const char* env = std::getenv("SAFNET_SIM_STACK_KIB")) {
    char* end = nullptr;
    unsigned long v = std::strtoul(env, &end, 10);
    if (end != env && *end == '\0' && v >= 16 && v <= 65536) kib = v;
  }
  const std::size_t p = page_size();
  return (kib * 1024 + p - 1) / p * p;
}

}  // namespace

std::size_t fiber_stack_size() {
  static const std::size_t size = compute_stack_size();
  return size;
}

const FiberStack& fiber_stack(unsigned i) {
  FiberStack& s = g_stacks[i];
  if (s.bottom == nullptr) {
    const std::size_t p = page_size();
    const std::size_t size = fiber_stack_size();
    void* m = mmap(nullptr, size + p, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED || mprotect(m, p, PROT_NONE) != 0) throw std::bad_alloc();
    s.size = size;
    s.bottom = static_cast<unsigned char*>(m) + p;
  }
  return s;
}

bool in_stack_guard(const void* addr) {
  auto a = static_cast<const unsigned char*>(addr);
  const std::size_t p = page_size();
  for (const FiberStack& s : g_stacks)
    if (s.bottom != nullptr && a >= s.bottom - p && a < s.bottom) return true;
  return false;
}

}  // namespace safnet::sim
