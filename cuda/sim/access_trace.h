// What a profiler's memory counters would report on the simulator (Nsight Compute's global
// sectors per request and shared-memory bank conflicts), from the accesses kernels mark through
// cuda/access_trace.h. Process-wide like cuda/sim/counters.h, per (kernel, site, kind), summed over
// launches until reset_access_stats(); nothing is recorded until set_access_tracing(true).
//
// A warp request is what one SASS instruction of a warp moves: the accesses of the warp's lanes
// with the same site, kind and key, within one block (a lane already in the request of a key
// starts the next request of that key). Per request:
// - global: sectors are the distinct 32-byte aligned segments touched; the ideal is
//   ceil(distinct bytes / 32), what the same bytes would need packed and aligned.
// - shared: the request runs in phases, all 32 lanes for accesses up to 4 bytes, half-warps for
//   8-byte and quarter-warps for 16-byte ones (sm_80 / sm_90); a phase takes as many wavefronts as
//   the most distinct 4-byte words any one of the 32 banks holds (one word read by many lanes is a
//   broadcast). The ideal is one wavefront per phase with an active lane.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace safnet::sim {

enum class AccessKind : std::uint8_t { global_load, global_store, shared_load, shared_store };

struct AccessStats {
  std::uint64_t requests = 0;
  std::uint64_t sectors = 0;        // global
  std::uint64_t ideal_sectors = 0;  // global
  std::uint64_t wavefronts = 0;        // shared
  std::uint64_t ideal_wavefronts = 0;  // shared
  double sectors_per_request() const { return requests ? double(sectors) / double(requests) : 0.0; }
  double ideal_per_request() const { return requests ? double(ideal_sectors) / double(requests) : 0.0; }
  AccessStats& operator+=(const AccessStats& o);
};

struct AccessRow {
  std::string kernel;  // the launch's kernel name, as SAFNET_LAUNCH spells it
  std::string site;
  AccessKind kind;
  AccessStats stats;
};

// Records from the following launches when `on` (off at start: kernel tests run untraced).
void set_access_tracing(bool on);
bool access_tracing();
void reset_access_stats();
// Every (kernel, site, kind) seen since the last reset, sorted.
std::vector<AccessRow> access_rows();
// The sum over kernels whose name contains `kernel` of that site and kind.
AccessStats access_stats(std::string_view kernel, std::string_view site, AccessKind kind);
const char* access_kind_name(AccessKind kind);

namespace detail {

// The current simulated thread's access of `bytes` (1 to 16) at `p`, part of request (site, key);
// `site` must outlive the block (a string literal).
void trace_access(AccessKind kind, const char* site, std::int64_t key, const void* p, unsigned bytes);
// A whole warp request at once (the WMMA collectives): lane l accesses `bytes` at lane_ptr[l],
// none where it is null.
void trace_warp_request(AccessKind kind, const char* site, const void* const lane_ptr[32], unsigned bytes);
// The request that accesses inside a problem's accessors join (cuda/access_trace.h's
// AccessRequest); site null when none.
struct CurrentRequest {
  const char* site = nullptr;
  std::int64_t key = 0;
};
// Fibers switch only at barriers and warp operations, so the OS thread's value is the running
// simulated thread's between an AccessRequest and its accessor call.
extern thread_local CurrentRequest t_request;
// The run_launch hooks: a block's requests are complete when it ends.
void begin_block_accesses();
void end_block_accesses(const char* kernel);

}  // namespace detail

}  // namespace safnet::sim
