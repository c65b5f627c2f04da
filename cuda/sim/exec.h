// Kernel execution on the simulator: the launch entry point, the current simulated thread, block
// barriers and warp exchanges. Blocks run one at a time on the launching OS thread, in a seeded
// shuffled order; the threads of a block are fibers resumed in a seeded shuffled order between
// barriers, so a race shows up as a result that changes with the seed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <source_location>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda/sim/runtime.h"

namespace safnet::sim {

// A kernel broke the execution model (divergent barrier, bad warp mask, exception in kernel code).
// The message names the kernel and the block.
class SimError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Seeds the block order and the fiber order within blocks for the following launches. The
// initial seed is SAFNET_SIM_SEED from the environment, or 1.
void set_schedule_seed(std::uint64_t seed);
std::uint64_t schedule_seed();

namespace detail {

struct BlockState {
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  unsigned char* dynamic_smem;
};
extern thread_local const uint3* t_thread_idx;
extern thread_local BlockState t_block;

struct LaunchSpec {
  const char* name;
  const void* kernel_id;  // for cudaFuncSetAttribute limits
  dim3 grid;
  dim3 block;
  std::size_t smem_bytes;
  cudaStream_t stream;
  void (*body)(void*);  // runs the kernel once for the current simulated thread
  void* body_ctx;
};
// Runs every block; configuration errors set the last CUDA error, model errors throw SimError,
// out-of-bounds accesses abort the process with a message.
void run_launch(const LaunchSpec& spec);
// Records a launch on a capturing stream (or queues it on an interleaved one): the configuration is checked now (an error sets the last
// error and invalidates the capture), the blocks run when the graph is launched. `keep` owns
// spec.body_ctx, the launch's copied arguments.
void capture_launch(const LaunchSpec& spec, std::shared_ptr<void> keep);

enum class WarpOp : std::uint8_t { sync, shfl, ballot, any, all, collective };
// Waits until every existing lane in `mask` made the same call, then exchanges: for shfl, `result`
// gets `size` bytes of lane `src_lane`'s `value` (0xff bytes when that lane is not in the group);
// ballot/any/all give an unsigned vote of `pred`.
void warp_exchange(WarpOp op, const char* name, unsigned mask, const void* value, unsigned size,
                   int src_lane, int pred, void* result, const std::source_location& loc);
// mode: 0 plain, 1 count, 2 and, 3 or of `pred` over the block; returns that result.
int block_barrier(int pred, int mode, const std::source_location& loc);
// A warp-wide operation (the WMMA calls): every one of the warp's 32 lanes must reach a call of the
// same `name` and `run`; the last to arrive calls `run` once, with each lane's `ctx` in lane order,
// while all lanes wait, so the operation sees the warp's operands at one instant as the hardware
// does. A non-empty `error` from `run` stops the kernel with that message.
using CollectiveFn = void (*)(void* const* lane_ctx, std::string& error);
void warp_collective(const char* name, CollectiveFn run, void* ctx, const std::source_location& loc);
unsigned lane_id();
// The current simulated thread's index within its block, x fastest.
unsigned thread_rank();
// Per-thread state of a feature simulated in its own file (cp.async's copy groups): `start` runs as
// each simulated thread begins, `finish` when its kernel body returns; `finish` may stop the kernel
// with kernel_fail (a thread that leaves work unfinished). Register at static initialisation.
struct ThreadHooks {
  void (*start)();
  void (*finish)();
};
void add_thread_hooks(ThreadHooks hooks);
// Stops the kernel with a SimError naming the current kernel, block and thread.
[[noreturn]] void kernel_fail(const std::string& message);

}  // namespace detail

template <typename... P, typename... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, std::size_t smem_bytes,
            cudaStream_t stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  static_assert((!std::is_reference_v<P> && ...), "kernel parameters must be passed by value");
  struct Ctx {
    void (*kernel)(P...);
    std::tuple<std::remove_cv_t<P>...> params;  // converted once, as a real launch does
  };
  Ctx ctx{kernel, std::tuple<std::remove_cv_t<P>...>(std::forward<A>(args)...)};
  detail::LaunchSpec spec{name, reinterpret_cast<const void*>(kernel), grid, block, smem_bytes,
                          stream,
                          [](void* c) {
                            auto* k = static_cast<Ctx*>(c);
                            std::apply(k->kernel, k->params);  // each thread gets its own copies
                          },
                          &ctx};
  if (detail::stream_capturing(stream) || detail::stream_deferred(stream)) {
    // Arguments by value, as a graph node (or a queued launch) holds them.
    auto held = std::make_shared<Ctx>(std::move(ctx));
    spec.body_ctx = held.get();
    detail::capture_launch(spec, std::move(held));
    return;
  }
  detail::run_launch(spec);
}

}  // namespace safnet::sim
