// The access counters: a block's accesses wait, grouped into warp requests, until the block ends;
// then each request is measured and added to its (kernel, site, kind). Blocks run one at a time
// (cuda/sim/exec.h), so the pending requests need no lock; the totals take one, for readers.
#include "cuda/sim/access_trace.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "cuda/sim/exec.h"
#include "cuda/sim/memory.h"

namespace safnet::sim {
namespace {

struct RequestId {
  unsigned warp;
  std::string_view site;
  AccessKind kind;
  std::int64_t key;
  unsigned occurrence;  // the n-th request of this key: a lane already in one goes to the next
  bool operator==(const RequestId&) const = default;
};
struct RequestHash {
  std::size_t operator()(const RequestId& r) const {
    std::size_t h = std::hash<std::string_view>{}(r.site);
    const std::uint64_t parts[] = {r.warp, static_cast<std::uint64_t>(r.kind), static_cast<std::uint64_t>(r.key),
                                   r.occurrence};
    for (const std::uint64_t v : parts)
      h = (h ^ v) * 0x9e3779b97f4a7c15ull ^ (h >> 29);
    return h;
  }
};
struct Access {
  std::uintptr_t addr;
  unsigned bytes;
};
struct Request {
  std::uint32_t lanes = 0;  // bit l: lane l's access is in at[l]
  std::array<Access, 32> at;
};

constexpr std::int64_t kWholeWarp = std::numeric_limits<std::int64_t>::min();

std::atomic<bool> g_tracing{false};
std::unordered_map<RequestId, Request, RequestHash> g_pending;
std::mutex g_stats_mutex;
std::map<std::tuple<std::string, std::string, AccessKind>, AccessStats> g_stats;

bool is_global(AccessKind k) { return k == AccessKind::global_load || k == AccessKind::global_store; }

// Where the access would be on a GPU: cudaMalloc aligns allocations to 256 bytes, the simulator's
// only to 32 (they end at a guard page), so a device address counts by its offset in its region.
std::uintptr_t gpu_address(AccessKind kind, const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (!is_global(kind)) return a;
  const auto start = reinterpret_cast<std::uintptr_t>(region_start(p, RegionKind::device));
  return start == 0 ? a : start / 256 * 256 + (a - start);
}

// The first request of (warp, site, kind, key) that none of `lanes` is in yet.
Request& request_for(unsigned warp, const char* site, AccessKind kind, std::int64_t key, std::uint32_t lanes) {
  for (unsigned n = 0;; ++n) {
    Request& r = g_pending[RequestId{warp, site, kind, key, n}];
    if ((r.lanes & lanes) == 0) return r;
  }
}

// The distinct values among the first n of v, sorted to the front.
template <std::size_t N>
std::size_t distinct(std::array<std::uintptr_t, N>& v, std::size_t n) {
  std::sort(v.begin(), v.begin() + n);
  return static_cast<std::size_t>(std::unique(v.begin(), v.begin() + n) - v.begin());
}

AccessStats measure_global(const Request& r) {
  std::array<std::uintptr_t, 32 * 2> sectors;  // a 16-byte access spans at most 2
  std::array<std::uintptr_t, 32 * 16> bytes;
  std::size_t ns = 0, nb = 0;
  for (unsigned l = 0; l < 32; ++l) {
    if (!(r.lanes >> l & 1)) continue;
    const Access& a = r.at[l];
    for (std::uintptr_t s = a.addr / 32; s <= (a.addr + a.bytes - 1) / 32; ++s) sectors[ns++] = s;
    for (std::uintptr_t b = a.addr; b < a.addr + a.bytes; ++b) bytes[nb++] = b;
  }
  AccessStats s;
  s.requests = 1;
  s.sectors = distinct(sectors, ns);
  s.ideal_sectors = (distinct(bytes, nb) + 31) / 32;
  return s;
}

AccessStats measure_shared(const Request& r) {
  unsigned width = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (r.lanes >> l & 1) width = std::max(width, r.at[l].bytes);
  const unsigned lanes_per_phase = width <= 4 ? 32 : width <= 8 ? 16 : 8;
  AccessStats s;
  s.requests = 1;
  for (unsigned first = 0; first < 32; first += lanes_per_phase) {
    std::array<std::uintptr_t, 32 * 4> words;
    std::size_t n = 0;
    for (unsigned l = first; l < first + lanes_per_phase; ++l)
      if (r.lanes >> l & 1)
        for (std::uintptr_t w = r.at[l].addr / 4; w <= (r.at[l].addr + r.at[l].bytes - 1) / 4; ++w) words[n++] = w;
    if (n == 0) continue;
    std::array<unsigned, 32> in_bank{};
    for (std::size_t i = 0, d = distinct(words, n); i < d; ++i) ++in_bank[words[i] % 32];
    s.wavefronts += *std::max_element(in_bank.begin(), in_bank.end());
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
  if (bytes == 0 || bytes > 16) kernel_fail("access of " + std::to_string(bytes) + " bytes at " + site);
  const unsigned thread = detail::thread_rank(), lane = thread % 32;
  Request& r = request_for(thread / 32, site, kind, key, 1u << lane);
  r.lanes |= 1u << lane;
  r.at[lane] = Access{gpu_address(kind, p), bytes};
}

void trace_warp_request(AccessKind kind, const char* site, const void* const lane_ptr[32], unsigned bytes) {
  if (!access_tracing() || t_thread_idx == nullptr) return;
  Request& r = request_for(detail::thread_rank() / 32, site, kind, kWholeWarp, ~0u);
  for (unsigned l = 0; l < 32; ++l)
    if (lane_ptr[l] != nullptr) {
      r.lanes |= 1u << l;
      r.at[l] = Access{gpu_address(kind, lane_ptr[l]), bytes};
    }
}

void begin_block_accesses() { g_pending.clear(); }

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
