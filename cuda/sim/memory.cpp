// Guarded simulated memory regions: mmap with leading and trailing PROT_NONE pages, plus canaries.
#include "cuda/sim/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

namespace safnet::sim {
namespace {

constexpr unsigned char kCanary = 0xcd;
// A region starts on a 32-byte sector, as a cudaMalloc allocation does (that one on 256 bytes): a
// kernel that aligns its loads to sectors by address makes the same choice here as on a GPU.
constexpr std::size_t kAlign = 32;

struct Region {
  unsigned char* map_base;  // leading guard page
  std::size_t map_size;     // guard + data pages + guard
  unsigned char* ptr;       // user start
  std::size_t size;         // user bytes
  RegionKind kind;
  unsigned char* data_begin() const { return map_base + page_size(); }
  unsigned char* data_end() const { return map_base + map_size - page_size(); }
  static std::size_t page_size() {
    static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return p;
  }
};

std::mutex g_mutex;
std::map<std::uintptr_t, Region>& regions() {  // keyed by map_base
  static auto* m = new std::map<std::uintptr_t, Region>();  // outlives static destructors
  return *m;
}

const Region* find_region(const void* addr) {
  auto& m = regions();
  auto a = reinterpret_cast<std::uintptr_t>(addr);
  auto it = m.upper_bound(a);
  if (it == m.begin()) return nullptr;
  --it;
  const Region& r = it->second;
  if (a >= it->first + r.map_size) return nullptr;
  return &r;
}

const char* kind_name(RegionKind k) {
  return k == RegionKind::device ? "cudaMalloc allocation" : "dynamic shared memory block";
}

std::size_t first_bad(const unsigned char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != kCanary) return i;
  return n;
}

}  // namespace

void* region_alloc(std::size_t size, RegionKind kind) {
  const std::size_t page = Region::page_size();
  const std::size_t aligned = (size + kAlign - 1) / kAlign * kAlign;
  const std::size_t data = (aligned + page - 1) / page * page;
  if (size > (SIZE_MAX / 2)) return nullptr;
  const std::size_t map_size = data + 2 * page;
  void* m = mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  auto* base = static_cast<unsigned char*>(m);
  if (mprotect(base, page, PROT_NONE) != 0 || mprotect(base + page + data, page, PROT_NONE) != 0) {
    munmap(m, map_size);
    return nullptr;
  }
  Region r{base, map_size, base + page + data - aligned, size, kind};
  std::memset(r.data_begin(), kCanary, static_cast<std::size_t>(r.ptr - r.data_begin()));
  std::memset(r.ptr + size, kCanary, aligned - size);
  region_poison(r.ptr, size);
  std::lock_guard<std::mutex> lock(g_mutex);
  regions()[reinterpret_cast<std::uintptr_t>(base)] = r;
  return r.ptr;
}

bool region_free(void* ptr, RegionKind kind) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const Region* r = find_region(ptr);
  if (r == nullptr || r->ptr != ptr || r->kind != kind) return false;
  Region copy = *r;
  regions().erase(reinterpret_cast<std::uintptr_t>(copy.map_base));
  munmap(copy.map_base, copy.map_size);
  return true;
}

bool region_contains(const void* ptr, std::size_t count, RegionKind kind) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const Region* r = find_region(ptr);
  if (r == nullptr || r->kind != kind) return false;
  auto p = static_cast<const unsigned char*>(ptr);
  return p >= r->ptr && p <= r->ptr + r->size && count <= static_cast<std::size_t>(r->ptr + r->size - p);
}

bool region_owns(const void* ptr, RegionKind kind) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const Region* r = find_region(ptr);
  return r != nullptr && r->kind == kind;
}

const void* region_start(const void* ptr, RegionKind kind) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const Region* r = find_region(ptr);
  return r != nullptr && r->kind == kind ? r->ptr : nullptr;
}

void region_poison(void* ptr, std::size_t size) { std::memset(ptr, 0xff, size); }

std::size_t device_bytes_in_use() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::size_t total = 0;
  for (auto& [base, r] : regions())
    if (r.kind == RegionKind::device) total += r.size;
  return total;
}

std::string check_canaries() {
  std::lock_guard<std::mutex> lock(g_mutex);
  for (auto& [base, r] : regions()) {
    const std::size_t head = static_cast<std::size_t>(r.ptr - r.data_begin());
    const std::size_t tail = static_cast<std::size_t>(r.data_end() - (r.ptr + r.size));
    const std::size_t h = first_bad(r.data_begin(), head);
    const std::size_t t = first_bad(r.ptr + r.size, tail);
    if (h == head && t == tail) continue;
    char msg[256];
    if (t != tail)
      std::snprintf(msg, sizeof msg, "a write %zu bytes past the end of the %zu-byte %s at %p",
                    t, r.size, kind_name(r.kind), static_cast<void*>(r.ptr));
    else
      std::snprintf(msg, sizeof msg, "a write %zu bytes before the start of the %zu-byte %s at %p",
                    head - h, r.size, kind_name(r.kind), static_cast<void*>(r.ptr));
    std::memset(r.data_begin(), kCanary, head);
    std::memset(r.ptr + r.size, kCanary, tail);
    return msg;
  }
  return {};
}

bool describe_address(const void* addr, char* out, std::size_t out_size) {
  const Region* r = find_region(addr);
  if (r == nullptr) return false;
  auto a = static_cast<const unsigned char*>(addr);
  if (a >= r->ptr + r->size)
    std::snprintf(out, out_size, "%zu bytes past the end of the %zu-byte %s at %p",
                  static_cast<std::size_t>(a - (r->ptr + r->size)), r->size, kind_name(r->kind),
                  static_cast<const void*>(r->ptr));
  else if (a < r->ptr)
    std::snprintf(out, out_size, "%zu bytes before the start of the %zu-byte %s at %p",
                  static_cast<std::size_t>(r->ptr - a), r->size, kind_name(r->kind),
                  static_cast<const void*>(r->ptr));
  else
    std::snprintf(out, out_size, "inside the %zu-byte %s at %p", r->size, kind_name(r->kind),
                  static_cast<const void*>(r->ptr));
  return true;
}

}  // namespace safnet::sim
