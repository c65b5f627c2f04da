// Per-thread cp.async queues and the checks a real GPU would punish, often silently: sizes,
// alignment, a source outside device memory, a destination outside shared memory, two pending
// copies into the same bytes, and copies a thread never waited for.
#include "cuda/sim/cp_async.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "cuda/sim/memory.h"
#include "cuda/sim/shared_memory.h"

namespace safnet::sim::detail {
namespace {

struct Copy {
  unsigned char* dst;
  const unsigned char* src;
  unsigned bytes;
  bool pred;
  const char* file;
  unsigned line;
};
using Group = std::vector<Copy>;

struct Queue {
  Group open;                    // issued since the last commit
  std::deque<Group> committed;  // oldest first
};

// Indexed by the thread's rank in its block; blocks run one at a time, under the launch lock.
std::vector<Queue> g_queues;

Queue& queue() {
  const unsigned rank = thread_rank();
  if (rank >= g_queues.size()) g_queues.resize(rank + 1);
  return g_queues[rank];
}

std::string where(const char* file, unsigned line) {
  return std::string(file) + ":" + std::to_string(line);
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

bool overlaps(const Copy& c, const unsigned char* dst, unsigned bytes) {
  return dst < c.dst + c.bytes && c.dst < dst + bytes;
}

// The pending copy into any of [dst, dst + bytes), or nullptr: two unordered copies into the same
// bytes leave either value (PTX: undefined behaviour).
const Copy* pending_overlap(const Queue& q, const unsigned char* dst, unsigned bytes) {
  for (const Copy& c : q.open)
    if (overlaps(c, dst, bytes)) return &c;
  for (const Group& g : q.committed)
    for (const Copy& c : g)
      if (overlaps(c, dst, bytes)) return &c;
  return nullptr;
}

void complete(const Group& g) {
  for (const Copy& c : g) {
    if (c.pred)
      std::memcpy(c.dst, c.src, c.bytes);
    else
      std::memset(c.dst, 0, c.bytes);
  }
}

std::size_t copies_pending(const Queue& q) {
  std::size_t n = q.open.size();
  for (const Group& g : q.committed) n += g.size();
  return n;
}

const Copy& first_pending(const Queue& q) {
  for (const Group& g : q.committed)
    if (!g.empty()) return g.front();
  return q.open.front();
}

void reset_queue() { queue() = Queue{}; }

// A thread must not end with copies in flight: their data would land after nobody can use it, and
// a neighbour reading it after a barrier reads whatever is there.
void check_all_waited() {
  const Queue& q = queue();
  const std::size_t n = copies_pending(q);
  if (n == 0) return;
  const Copy& c = first_pending(q);
  kernel_fail("the thread ends with " + std::to_string(n) + " cp.async cop" +
              (n == 1 ? "y" : "ies") + " not waited for (" +
              (q.open.empty() ? "" : std::to_string(q.open.size()) + " never committed, ") +
              "first issued at " + where(c.file, c.line) +
              "); wait_group completes committed groups only");
}

const bool g_hooks_registered = (add_thread_hooks({reset_queue, check_all_waited}), true);

}  // namespace

void cp_async_issue(void* smem_dst, const void* gmem_src, unsigned bytes, bool pred,
                    const std::source_location& loc) {
  (void)g_hooks_registered;
  const std::string at = "cp.async at " + where(loc.file_name(), loc.line()) + ": ";
  if (bytes != 4 && bytes != 8 && bytes != 16)
    kernel_fail(at + "copies " + std::to_string(bytes) + " bytes (cp-size must be 4, 8 or 16)");
  const auto d = reinterpret_cast<std::uintptr_t>(smem_dst);
  const auto s = reinterpret_cast<std::uintptr_t>(gmem_src);
  if (d % bytes != 0)
    kernel_fail(at + "destination " + hex(smem_dst) + " is not aligned to its " +
                std::to_string(bytes) + " bytes");
  if (s % bytes != 0)
    kernel_fail(at + "source " + hex(gmem_src) + " is not aligned to its " + std::to_string(bytes) +
                " bytes");
  if (region_owns(smem_dst, RegionKind::device))
    kernel_fail(at + "destination " + hex(smem_dst) + " is global memory, not shared memory");
  if (!is_shared_memory(smem_dst, bytes))
    kernel_fail(at + "destination " + hex(smem_dst) +
                " is not shared memory (neither a __shared__ array nor the dynamic shared block)");
  // A predicated-off copy reads nothing, so its source may lie outside the tensor.
  if (pred && !region_contains(gmem_src, bytes, RegionKind::device))
    kernel_fail(at + "source " + hex(gmem_src) + " is not " + std::to_string(bytes) +
                " bytes inside a live cudaMalloc allocation");
  Queue& q = queue();
  auto* dst = static_cast<unsigned char*>(smem_dst);
  if (const Copy* other = pending_overlap(q, dst, bytes))
    kernel_fail(at + "destination " + hex(smem_dst) +
                " overlaps a copy still pending from " + where(other->file, other->line) +
                " (unordered copies into the same bytes)");
  q.open.push_back(
      {dst, static_cast<const unsigned char*>(gmem_src), bytes, pred, loc.file_name(), loc.line()});
  region_poison(dst, bytes);  // read before the wait completes the copy: garbage, as on the GPU
}

void cp_async_commit_group() {
  Queue& q = queue();
  q.committed.push_back(std::move(q.open));  // an empty group is a group too
  q.open.clear();
}

void cp_async_wait_group(int pending) {
  Queue& q = queue();
  while (q.committed.size() > static_cast<std::size_t>(pending)) {
    complete(q.committed.front());
    q.committed.pop_front();
  }
}

}  // namespace safnet::sim::detail
