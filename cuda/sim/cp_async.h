// cp.async on the simulator (cuda/cp_async.h gives the API and the semantics it keeps). Each
// simulated thread has its own queue of copies: an open group and the committed groups, oldest
// first. A copy poisons its destination (0xff bytes) when issued and runs, reading its source,
// when a wait completes its group.
#pragma once
#include <cstddef>
#include <source_location>

#include "cuda/sim/exec.h"

namespace safnet::sim::detail {

// Checks a copy of `bytes` (4, 8 or 16) and queues it in the calling thread's open group.
void cp_async_issue(void* smem_dst, const void* gmem_src, unsigned bytes, bool pred,
                    const std::source_location& loc);
void cp_async_commit_group();
// Completes the oldest committed groups until at most `pending` remain; the open group waits.
void cp_async_wait_group(int pending);

}  // namespace safnet::sim::detail

namespace safnet {

template <int Bytes>
inline void cp_async(void* smem_dst, const void* gmem_src, bool pred,
                     std::source_location loc = std::source_location::current()) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
  sim::detail::cp_async_issue(smem_dst, gmem_src, Bytes, pred, loc);
}

inline void cp_async_commit() { sim::detail::cp_async_commit_group(); }

template <int N>
inline void cp_async_wait() {
  static_assert(N >= 0, "cp.async.wait_group takes a count of groups left pending");
  sim::detail::cp_async_wait_group(N);
}

inline void cp_async_wait_all() {
  sim::detail::cp_async_commit_group();
  sim::detail::cp_async_wait_group(0);
}

}  // namespace safnet
