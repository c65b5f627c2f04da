// The access counters: a block's accesses wait, grouped into warp requests, until the block ends;
// then each request is measured and added to its (kernel, site, kind). Blocks run one at a time
// (cuda/sim/exec.h), so the pending requests need no lock; the totals take one, for readers.
#include "cuda/sim/access_trace.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <compare>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "cuda/sim/exec.h"
#include "cuda/sim/memory.h"

namespace safnet::sim {
namespace {

struct RequestId {
  unsigned warp;
  std::string_view site;
  AccessKind kind;
  std::int64_t key;
  unsigned occurrence;
  auto operator<=>(const RequestId&) const = default;
};
// Which occurrence of (site, kind, key) a thread (or, for whole-warp requests, a warp) is at.
struct Slot {
  unsigned thread;
  std::string_view site;
  AccessKind kind;
  std::int64_t key;
  auto operator<=>(const Slot&) const = default;
};
struct Access {
  unsigned lane;
  std::uintptr_t addr;
  unsigned bytes;
};
using Request = std::vector<Access>;

constexpr std::int64_t kWholeWarp = std::numeric_limits<std::int64_t>::min();

std::atomic<bool> g_tracing{false};
std::map<RequestId, Request> g_pending;
std::map<Slot, unsigned> g_occurrences;
std::mutex g_stats_mutex;
std::map<std::tuple<std::string, std::string, AccessKind>, AccessStats> g_stats;

bool is_global(AccessKind k) { return k == AccessKind::global_load || k == AccessKind::global_store; }

unsigned current_thread() {
  const uint3 t = *detail::t_thread_idx;
  const dim3 b = detail::t_block.block_dim;
  return t.x + b.x * (t.y + b.y * t.z);
}

// Where the access would be on a GPU: cudaMalloc aligns allocations to 256 bytes, the simulator's
// only to 16 (they end at a guard page), so a device address counts by its offset in its region.
std::uintptr_t gpu_address(AccessKind kind, const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (!is_global(kind)) return a;
  const auto start = reinterpret_cast<std::uintptr_t>(region_start(p, RegionKind::device));
  return start == 0 ? a : start / 256 * 256 + (a - start);
}

Request& next_request(const Slot& slot) {
  const unsigned n = g_occurrences[slot]++;
  return g_pending[RequestId{slot.thread / 32, slot.site, slot.kind, slot.key, n}];
}

AccessStats measure_global(const Request& r) {
  std::set<std::uintptr_t> sectors;
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> spans;  // [begin, end)
  for (const Access& a : r) {
    for (std::uintptr_t s = a.addr / 32; s <= (a.addr + a.bytes - 1) / 32; ++s) sectors.insert(s);
    spans.emplace_back(a.addr, a.addr + a.bytes);
  }
  std::sort(spans.begin(), spans.end());
  std::uint64_t distinct = 0;
  std::uintptr_t covered = 0;  // end of the bytes counted so far
  for (const auto& [b, e] : spans) {
    const std::uintptr_t from = std::max(b, covered);
    if (e > from) distinct += e - from;
    covered = std::max(covered, e);
  }
  AccessStats s;
  s.requests = 1;
  s.sectors = sectors.size();
  s.ideal_sectors = (distinct + 31) / 32;
  return s;
}

AccessStats measure_shared(const Request& r) {
  unsigned width = 0;
  for (const Access& a : r) width = std::max(width, a.bytes);
  const unsigned lanes_per_phase = width <= 4 ? 32 : width <= 8 ? 16 : 8;
  AccessStats s;
  s.requests = 1;
  for (unsigned phase = 0; phase < 32 / lanes_per_phase; ++phase) {
    std::array<std::set<std::uintptr_t>, 32> words;  // per bank
    bool active = false;
    for (const Access& a : r) {
      if (a.lane / lanes_per_phase != phase) continue;
      active = true;
      for (std::uintptr_t w = a.addr / 4; w <= (a.addr + a.bytes - 1) / 4; ++w) words[w % 32].insert(w);
    }
    if (!active) continue;
    std::size_t most = 0;
    for (const auto& bank : words) most = std::max(most, bank.size());
    s.wavefronts += most;
    s.ideal_wavefronts += 1;
  }
  return s;
}

}  // namespace

AccessStats& AccessStats::operator+=(const AccessStats& o) {
  requests += o.requests;
  sectors += o.sectors;
  ideal_sectors += o.ideal_sectors;
  wavefronts += o.wavefronts;
  ideal_wavefronts += o.ideal_wavefronts;
  return *this;
}

void set_access_tracing(bool on) { g_tracing.store(on, std::memory_order_relaxed); }
bool access_tracing() { return g_tracing.load(std::memory_order_relaxed); }

void reset_access_stats() {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  g_stats.clear();
}

std::vector<AccessRow> access_rows() {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  std::vector<AccessRow> rows;
  for (const auto& [k, s] : g_stats) rows.push_back(AccessRow{std::get<0>(k), std::get<1>(k), std::get<2>(k), s});
  return rows;
}

AccessStats access_stats(std::string_view kernel, std::string_view site, AccessKind kind) {
  AccessStats sum;
  for (const AccessRow& r : access_rows())
    if (r.kernel.find(kernel) != std::string::npos && r.site == site && r.kind == kind) sum += r.stats;
  return sum;
}

const char* access_kind_name(AccessKind kind) {
  switch (kind) {
    case AccessKind::global_load: return "global load";
    case AccessKind::global_store: return "global store";
    case AccessKind::shared_load: return "shared load";
    case AccessKind::shared_store: return "shared store";
  }
  return "?";
}

namespace detail {

thread_local CurrentRequest t_request;

void trace_access(AccessKind kind, const char* site, std::int64_t key, const void* p, unsigned bytes) {
  if (!access_tracing() || t_thread_idx == nullptr) return;
  const unsigned thread = current_thread();
  next_request(Slot{thread, site, kind, key}).push_back(Access{thread % 32, gpu_address(kind, p), bytes});
}

void trace_warp_request(AccessKind kind, const char* site, const void* const lane_ptr[32], unsigned bytes) {
  if (!access_tracing() || t_thread_idx == nullptr) return;
  Request& r = next_request(Slot{current_thread() / 32 * 32, site, kind, kWholeWarp});
  for (unsigned l = 0; l < 32; ++l)
    if (lane_ptr[l] != nullptr) r.push_back(Access{l, gpu_address(kind, lane_ptr[l]), bytes});
}

void begin_block_accesses() {
  g_pending.clear();
  g_occurrences.clear();
}

void end_block_accesses(const char* kernel) {
  if (g_pending.empty()) return;
  std::map<std::tuple<std::string_view, AccessKind>, AccessStats> block;
  for (const auto& [id, r] : g_pending)
    block[{id.site, id.kind}] += is_global(id.kind) ? measure_global(r) : measure_shared(r);
  begin_block_accesses();
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  for (const auto& [k, s] : block)
    g_stats[{kernel, std::string(std::get<0>(k)), std::get<1>(k)}] += s;
}

}  // namespace detail
}  // namespace safnet::sim
