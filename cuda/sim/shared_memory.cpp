// Shared memory on the simulator: the dynamic shared region, or the writable static segments of the
// loaded objects, read from the program headers (dl_iterate_phdr) and cached until an address
// misses (a library loaded since).
#include "cuda/sim/shared_memory.h"

#include <link.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "cuda/sim/memory.h"

namespace safnet::sim {
namespace {

struct Segment {
  std::uintptr_t begin, end;
};

std::vector<Segment> writable_segments() {
  std::vector<Segment> out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto& segs = *static_cast<std::vector<Segment>*>(data);
        for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0) continue;
          const std::uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
          segs.push_back({begin, begin + ph.p_memsz});
        }
        return 0;
      },
      &out);
  return out;
}

bool inside(const std::vector<Segment>& segs, std::uintptr_t p, std::size_t count) {
  for (const Segment& s : segs)
    if (p >= s.begin && p <= s.end && count <= s.end - p) return true;
  return false;
}

bool in_static_storage(const void* ptr, std::size_t count) {
  static std::mutex mutex;
  static std::vector<Segment> segs;
  std::lock_guard<std::mutex> lock(mutex);
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  if (inside(segs, p, count)) return true;
  segs = writable_segments();
  return inside(segs, p, count);
}

}  // namespace

bool is_shared_memory(const void* ptr, std::size_t count) {
  return region_contains(ptr, count, RegionKind::dynamic_shared) || in_static_storage(ptr, count);
}

}  // namespace safnet::sim
