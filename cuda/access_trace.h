// Marks a kernel's memory accesses for the simulator's profiler counters (cuda/sim/access_trace.h):
// global sectors per warp request and shared-memory bank conflicts. Under nvcc, and in host files
// of the GPU build, every call is empty and compiles to nothing.
//
// A site names the operand (a string literal: "A tile", "C staging"); a key, chosen by the kernel,
// names the instruction instance within the site (a loop index and the K step), so lanes that skip
// a load (padding, ragged tile edges) do not shift which accesses count as one warp request.
//   trace_shared_load / trace_shared_store: the access itself, with its site and key;
//   AccessRequest: the site and key of the global loads made inside a problem's accessor
//     (a()/b() of cuda/kernels/tiled_gemm.h), which marks them with trace_global_load.
#pragma once
#include <cstdint>

#include "cuda/hd.h"

#if !defined(__CUDACC__) && !defined(SAFNET_CUDA_REAL)
#include "cuda/sim/access_trace.h"
#define SAFNET_ACCESS_TRACE 1
#endif

namespace safnet::cuda::inline SAFNET_BUILD {

// The key of instance `minor` of a load in the loop step `major`.
SAFNET_HD constexpr std::int64_t access_key(int major, int minor) {
  return static_cast<std::int64_t>(major) * (std::int64_t{1} << 32) + static_cast<std::uint32_t>(minor);
}

#if defined(SAFNET_ACCESS_TRACE)

class AccessRequest {
 public:
  AccessRequest(const char* site, std::int64_t key) { ::safnet::sim::detail::t_request = {site, key}; }
  ~AccessRequest() { ::safnet::sim::detail::t_request = {}; }
  AccessRequest(const AccessRequest&) = delete;
  AccessRequest& operator=(const AccessRequest&) = delete;
};

inline void trace_global_load(const void* p, unsigned bytes) {
  const ::safnet::sim::detail::CurrentRequest& r = ::safnet::sim::detail::t_request;
  if (r.site != nullptr)
    ::safnet::sim::detail::trace_access(::safnet::sim::AccessKind::global_load, r.site, r.key, p, bytes);
}
inline void trace_shared_load(const char* site, std::int64_t key, const void* p, unsigned bytes) {
  ::safnet::sim::detail::trace_access(::safnet::sim::AccessKind::shared_load, site, key, p, bytes);
}
inline void trace_shared_store(const char* site, std::int64_t key, const void* p, unsigned bytes) {
  ::safnet::sim::detail::trace_access(::safnet::sim::AccessKind::shared_store, site, key, p, bytes);
}

#else

class AccessRequest {
 public:
  SAFNET_HD AccessRequest(const char*, std::int64_t) {}
};
SAFNET_HD void trace_global_load(const void*, unsigned) {}
SAFNET_HD void trace_shared_load(const char*, std::int64_t, const void*, unsigned) {}
SAFNET_HD void trace_shared_store(const char*, std::int64_t, const void*, unsigned) {}

#endif

// *p, marked as a global load of the current AccessRequest.
template <typename T>
SAFNET_HD T traced_load(const T* p) {
  trace_global_load(p, sizeof(T));
  return *p;
}

}  // namespace safnet::cuda
