// The simulator's scheduler: blocks in a seeded permuted order, each block's threads as fibers
// resumed in a seeded shuffled order, block barriers and warp exchanges with divergence checks.
#include "cuda/sim/exec.h"

#include <boost/context/fiber.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <vector>

#include "cuda/sim/access_trace.h"
#include "cuda/sim/counters.h"
#include "cuda/sim/fault.h"
#include "cuda/sim/memory.h"
#include "cuda/sim/stacks.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SAFNET_SIM_ASAN 1
#endif

namespace ctx = boost::context;

namespace safnet::sim {
namespace detail {
thread_local const uint3* t_thread_idx = nullptr;
thread_local BlockState t_block{};
}  // namespace detail

namespace {

// Thrown at a suspended fiber's yield point to unwind it when its block is abandoned.
struct KernelAbort {};

enum class State : std::uint8_t { runnable, block_wait, warp_wait, done, failed };

struct SimThread {
  uint3 idx{};
  unsigned linear = 0;
  State state = State::runnable;
  ctx::fiber fiber;  // held by the scheduler while the thread is suspended
  ctx::fiber sched;  // held by the thread while it runs: the scheduler to return to
  // Where the thread waits, for barrier matching and error messages.
  const char* wait_name = nullptr;
  const char* file = nullptr;
  unsigned line = 0;
  int pred = 0;
  int barrier_mode = 0;
  detail::WarpOp op = detail::WarpOp::sync;
  unsigned mask = 0;
  unsigned size = 0;
  int src = 0;
  detail::CollectiveFn collective = nullptr;
  void* collective_ctx = nullptr;
  alignas(16) unsigned char value[16];
  alignas(16) unsigned char result[16];
  std::string error;
#if defined(SAFNET_SIM_ASAN)
  void* fake_stack = nullptr;
  const void* sched_bottom = nullptr;
  std::size_t sched_size = 0;
#endif
};

struct Launch {
  const detail::LaunchSpec* spec = nullptr;
  std::vector<SimThread> threads;
  std::vector<unsigned> next;  // threads released during the current round
  bool aborting = false;
  int barrier_result = 0;
};

// splitmix64: a tiny generator with a fixed definition, so schedules match across platforms.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

std::uint64_t initial_seed() {
  if (const char* env = std::getenv("SAFNET_SIM_SEED")) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(env, &end, 0);
    if (end != env && *end == '\0') return v;
  }
  return 1;
}

std::mutex g_launch_mutex;  // blocks run one at a time, process-wide, so atomics can be plain
std::uint64_t g_seed = initial_seed();
Rng g_rng{g_seed};
thread_local Launch* t_launch = nullptr;
thread_local bool t_graph_replay = false;  // for the counters: a graph launch is running this launch
thread_local SimThread* t_current = nullptr;

std::vector<detail::ThreadHooks>& thread_hooks() {
  static std::vector<detail::ThreadHooks> hooks;  // filled at static initialisation, then read-only
  return hooks;
}

// A stack allocator handing boost the pooled stack of one thread slot; the pool keeps it.
struct PooledStack {
  FiberStack stack;
  ctx::stack_context allocate() {
    ctx::stack_context sc;
    sc.size = stack.size;
    sc.sp = stack.bottom + stack.size;
    return sc;
  }
  void deallocate(ctx::stack_context&) noexcept {}
};

std::string fmt3(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string block_prefix(const Launch& L) {
  return "safnet sim: kernel '" + std::string(L.spec->name) + "' block " +
         fmt3(detail::t_block.block_idx);
}

void yield_to_scheduler(SimThread* th) {
#if defined(SAFNET_SIM_ASAN)
  __sanitizer_start_switch_fiber(&th->fake_stack, th->sched_bottom, th->sched_size);
#endif
  th->sched = std::move(th->sched).resume();
#if defined(SAFNET_SIM_ASAN)
  __sanitizer_finish_switch_fiber(th->fake_stack, &th->sched_bottom, &th->sched_size);
#endif
  if (t_launch->aborting) throw KernelAbort{};
}

void resume(Launch& L, SimThread& th, unsigned slot) {
  t_current = &th;
  detail::t_thread_idx = &th.idx;
#if defined(SAFNET_SIM_ASAN)
  void* fake = nullptr;
  const FiberStack& st = fiber_stack(slot);
  __sanitizer_start_switch_fiber(&fake, st.bottom, st.size);
#else
  (void)slot;
#endif
  th.fiber = std::move(th.fiber).resume();
#if defined(SAFNET_SIM_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  t_current = nullptr;
  detail::t_thread_idx = nullptr;
  (void)L;
}

ctx::fiber start_thread(SimThread* th, unsigned slot) {
  return ctx::fiber(std::allocator_arg, PooledStack{fiber_stack(slot)},
                    [th](ctx::fiber&& sched) -> ctx::fiber {
                      th->sched = std::move(sched);
#if defined(SAFNET_SIM_ASAN)
                      __sanitizer_finish_switch_fiber(nullptr, &th->sched_bottom, &th->sched_size);
#endif
                      try {
                        // A block abandoned before this thread started must not run it.
                        if (!t_launch->aborting) {
                          for (const detail::ThreadHooks& h : thread_hooks()) h.start();
                          t_launch->spec->body(t_launch->spec->body_ctx);
                          for (const detail::ThreadHooks& h : thread_hooks()) h.finish();
                        }
                        th->state = State::done;
                      } catch (const KernelAbort&) {
                        th->state = State::done;
                      } catch (const std::exception& e) {
                        th->error = std::string("exception in kernel code: ") + e.what();
                        th->state = State::failed;
                      } catch (...) {
                        th->error = "unknown exception in kernel code";
                        th->state = State::failed;
                      }
#if defined(SAFNET_SIM_ASAN)
                      __sanitizer_start_switch_fiber(nullptr, th->sched_bottom, th->sched_size);
#endif
                      return std::move(th->sched);
                    });
}

// Unwinds every suspended thread of the block so its stack can be reused.
void abandon_block(Launch& L) {
  L.aborting = true;
  for (unsigned i = 0; i < L.threads.size(); ++i)
    if (L.threads[i].fiber) resume(L, L.threads[i], i);
  L.aborting = false;
}

[[noreturn]] void block_error(Launch& L, const std::string& problem) {
  std::string msg = block_prefix(L) + ": " + problem;
  abandon_block(L);
  throw SimError(msg);
}

std::string site(const SimThread& t) {
  return std::string(t.wait_name) + " (" + t.file + ":" + std::to_string(t.line) + ")";
}

// Explains why no thread can continue: where each group of threads waits or that it exited.
std::string describe_stall(const Launch& L) {
  std::map<std::string, std::pair<unsigned, uint3>> groups;  // what -> (count, first thread)
  for (const SimThread& t : L.threads) {
    std::string what;
    if (t.state == State::done) {
      what = "exited";
    } else if (t.state == State::block_wait) {
      what = "wait at " + site(t);
    } else {
      char mask[16];
      std::snprintf(mask, sizeof mask, "0x%08x", t.mask);
      what = "wait at " + site(t) + " with mask " + mask + " in warp " +
             std::to_string(t.linear / 32);
    }
    auto [it, inserted] = groups.try_emplace(what, 0u, t.idx);
    ++it->second.first;
  }
  std::string out = "threads do not all reach the same barrier: ";
  const char* sep = "";
  for (auto& [what, g] : groups) {
    out += sep + std::to_string(g.first) + " thread(s) " + what + " (first " + fmt3(g.second) + ")";
    sep = "; ";
  }
  return out;
}

bool same_site(const SimThread& a, const SimThread& b) {
  return a.line == b.line && std::strcmp(a.file, b.file) == 0 && a.barrier_mode == b.barrier_mode;
}

// All threads wait at a block barrier: releases them, or reports a mismatch or an exit.
bool release_block_barrier(Launch& L) {
  const SimThread& first = L.threads[0];
  int count = 0;
  for (const SimThread& t : L.threads) {
    if (t.state != State::block_wait || !same_site(t, first)) return false;
    count += t.pred != 0;
  }
  const int n = static_cast<int>(L.threads.size());
  switch (first.barrier_mode) {
    case 1: L.barrier_result = count; break;
    case 2: L.barrier_result = count == n; break;
    case 3: L.barrier_result = count > 0; break;
    default: L.barrier_result = 0;
  }
  for (unsigned i = 0; i < L.threads.size(); ++i) {
    L.threads[i].state = State::runnable;
    L.next.push_back(i);
  }
  return true;
}

void shuffle(std::vector<unsigned>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

void run_block(Launch& L, uint3 block_idx) {
  detail::t_block.block_idx = block_idx;
  const dim3 bd = L.spec->block;
  const unsigned n = bd.x * bd.y * bd.z;
  if (L.spec->smem_bytes > 0) region_poison(detail::t_block.dynamic_smem, L.spec->smem_bytes);
  for (unsigned i = 0; i < n; ++i) {
    SimThread& t = L.threads[i];
    t.state = State::runnable;
    t.error.clear();
    t.fiber = start_thread(&t, i);
  }
  std::vector<unsigned> round(n);
  std::iota(round.begin(), round.end(), 0u);
  for (;;) {
    shuffle(round, g_rng);
    for (unsigned i : round) {
      resume(L, L.threads[i], i);
      if (L.threads[i].state == State::failed)
        block_error(L, "thread " + fmt3(L.threads[i].idx) + ": " + L.threads[i].error);
    }
    if (L.next.empty()) {
      bool all_done = true;
      for (const SimThread& t : L.threads) all_done = all_done && t.state == State::done;
      if (all_done) return;
      if (!release_block_barrier(L)) block_error(L, describe_stall(L));
    }
    round.swap(L.next);
    L.next.clear();
  }
}

unsigned long long gcd(unsigned long long a, unsigned long long b) {
  while (b != 0) a = std::exchange(b, a % b);
  return a;
}

bool valid_config(dim3 g, dim3 b) {
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0) return false;
  if (b.x > 1024 || b.y > 1024 || b.z > 64) return false;
  if (static_cast<unsigned long long>(b.x) * b.y * b.z > kMaxThreadsPerBlock) return false;
  return g.x <= 2147483647u && g.y <= 65535 && g.z <= 65535;
}

// Frees the launch's dynamic shared memory and clears the thread-local launch state.
struct LaunchScope {
  Launch& L;
  ~LaunchScope() {
    if (detail::t_block.dynamic_smem != nullptr)
      region_free(detail::t_block.dynamic_smem, RegionKind::dynamic_shared);
    detail::t_block = detail::BlockState{};
    t_launch = nullptr;
  }
};

}  // namespace

void set_schedule_seed(std::uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  g_seed = seed;
  g_rng = Rng{seed};
}

std::uint64_t schedule_seed() {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  return g_seed;
}

namespace detail {

namespace {

// The launch errors the runtime reports at the launch call.
cudaError_t launch_error(const LaunchSpec& spec) {
  if (t_launch != nullptr)
    throw SimError("safnet sim: kernel '" + std::string(spec.name) +
                   "' launched from inside a kernel (dynamic parallelism is not simulated)");
  if (!valid_config(spec.grid, spec.block)) return cudaErrorInvalidConfiguration;
  if (spec.smem_bytes > max_dynamic_smem(spec.kernel_id)) return cudaErrorInvalidValue;
  if (!stream_is_valid(spec.stream)) return cudaErrorInvalidResourceHandle;
  return cudaSuccess;
}

}  // namespace

void capture_launch(const LaunchSpec& spec, std::shared_ptr<void> keep) {
  if (const cudaError_t e = launch_error(spec); e != cudaSuccess) {
    capture_invalidate(spec.stream);
    set_last_error(e);
    return;
  }
  const bool by_graph = stream_capturing(spec.stream);  // else queued on an interleaved stream
  auto r = capture_record(spec.stream, [spec, keep, by_graph](cudaStream_t stream) {
    LaunchSpec replay = spec;
    replay.stream = stream;
    struct Reset {
      bool was;
      ~Reset() { t_graph_replay = was; }
    } reset{t_graph_replay};
    if (by_graph) t_graph_replay = true;  // launches run by a graph replay are not host launches
    run_launch(replay);
    return cudaSuccess;
  });
  if (r && *r != cudaSuccess) set_last_error(*r);
  // A capture ended by another thread since the caller looked: run it, as an uncaptured launch.
  if (!r) run_launch(spec);
}

void run_launch(const LaunchSpec& spec) {
  if (const cudaError_t e = launch_error(spec); e != cudaSuccess) {
    set_last_error(e);
    return;
  }
  count_kernel_launch(t_graph_replay);
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  install_fault_handler();
  Launch L;
  L.spec = &spec;
  const unsigned n = spec.block.x * spec.block.y * spec.block.z;
  L.threads.resize(n);
  for (unsigned i = 0; i < n; ++i) {
    SimThread& t = L.threads[i];
    t.linear = i;
    t.idx = uint3{i % spec.block.x, i / spec.block.x % spec.block.y,
                  i / (spec.block.x * spec.block.y)};
  }
  t_launch = &L;
  LaunchScope scope{L};
  t_block.block_dim = spec.block;
  t_block.grid_dim = spec.grid;
  t_block.dynamic_smem = nullptr;
  if (spec.smem_bytes > 0) {
    t_block.dynamic_smem =
        static_cast<unsigned char*>(region_alloc(spec.smem_bytes, RegionKind::dynamic_shared));
    if (t_block.dynamic_smem == nullptr) throw std::bad_alloc();
  }
  // An affine permutation i -> (a*i + b) mod blocks visits every block once in a seeded order.
  const unsigned long long blocks =
      static_cast<unsigned long long>(spec.grid.x) * spec.grid.y * spec.grid.z;
  unsigned long long a = 1;
  if (blocks > 2) {
    do a = 1 + g_rng.below(blocks - 1);
    while (gcd(a, blocks) != 1);
  }
  const unsigned long long b = g_rng.below(blocks);
  for (unsigned long long i = 0; i < blocks; ++i) {
    // (a*i + b) mod blocks without overflow: blocks < 2^63, a < blocks.
    const unsigned long long k = static_cast<unsigned long long>(
        (static_cast<unsigned __int128>(a) * i + b) % blocks);
    const unsigned gx = spec.grid.x, gy = spec.grid.y;
    begin_block_accesses();
    run_block(L, uint3{static_cast<unsigned>(k % gx), static_cast<unsigned>(k / gx % gy),
                       static_cast<unsigned>(k / (static_cast<unsigned long long>(gx) * gy))});
    end_block_accesses(spec.name);
  }
  const std::string bad = check_canaries();
  if (!bad.empty()) {
    std::fprintf(stderr, "safnet sim: kernel '%s': invalid memory access: %s\n", spec.name,
                 bad.c_str());
    std::abort();
  }
}

void warp_exchange(WarpOp op, const char* name, unsigned mask, const void* value, unsigned size,
                   int src_lane, int pred, void* result, const std::source_location& loc) {
  SimThread* th = t_current;
  Launch& L = *t_launch;
  const unsigned lane = th->linear % 32;
  const unsigned base = th->linear - lane;
  const unsigned lanes = std::min<unsigned>(32, static_cast<unsigned>(L.threads.size()) - base);
  const unsigned existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
  th->wait_name = name;
  th->file = loc.file_name();
  th->line = loc.line();
  if (((mask >> lane) & 1u) == 0) {
    char m[16];
    std::snprintf(m, sizeof m, "0x%08x", mask);
    kernel_fail(std::string(name) + " at " + th->file + ":" + std::to_string(th->line) +
                " with mask " + m + " that excludes the calling lane " + std::to_string(lane));
  }
  th->op = op;
  th->mask = mask;
  th->size = size;
  th->src = src_lane;
  th->pred = pred;
  if (size > 0) std::memcpy(th->value, value, size);
  th->state = State::warp_wait;
  const unsigned group = mask & existing;
  bool complete = true;
  for (unsigned l = 0; l < 32 && complete; ++l) {
    if (((group >> l) & 1u) == 0) continue;
    const SimThread& o = L.threads[base + l];
    complete = o.state == State::warp_wait && o.mask == mask;
  }
  if (complete) {
    unsigned votes = 0;
    for (unsigned l = 0; l < 32; ++l) {
      if (((group >> l) & 1u) == 0) continue;
      const SimThread& o = L.threads[base + l];
      if (o.op != op || o.size != size ||
          (op == WarpOp::collective && (o.collective != th->collective || std::strcmp(o.wait_name, name) != 0)))
        kernel_fail(std::string("lanes of warp ") + std::to_string(base / 32) +
                    " meet at different warp intrinsics: " + site(*th) + " and " + site(o));
      if (o.pred != 0) votes |= 1u << l;
    }
    if (op == WarpOp::collective) {
      void* ctxs[32];
      for (unsigned l = 0; l < 32; ++l) ctxs[l] = L.threads[base + l].collective_ctx;
      std::string error;
      th->collective(ctxs, error);
      if (!error.empty()) kernel_fail(std::string(name) + " at " + th->file + ":" + std::to_string(th->line) + ": " + error);
    }
    for (unsigned l = 0; l < 32; ++l) {
      if (((group >> l) & 1u) == 0) continue;
      SimThread& o = L.threads[base + l];
      unsigned r = 0;
      switch (op) {
        case WarpOp::shfl: {
          const unsigned s = static_cast<unsigned>(o.src);
          if (s < 32 && ((group >> s) & 1u) != 0)
            std::memcpy(o.result, L.threads[base + s].value, size);
          else
            std::memset(o.result, 0xff, size);
          break;
        }
        case WarpOp::ballot: r = votes; break;
        case WarpOp::any: r = votes != 0; break;
        case WarpOp::all: r = votes == group; break;
        case WarpOp::sync:
        case WarpOp::collective: break;
      }
      if (op != WarpOp::shfl) std::memcpy(o.result, &r, sizeof r);
      o.state = State::runnable;
      L.next.push_back(base + l);
    }
  }
  yield_to_scheduler(th);
  if (op == WarpOp::shfl)
    std::memcpy(result, th->result, size);
  else if (result != nullptr)
    std::memcpy(result, th->result, sizeof(unsigned));
}

void warp_collective(const char* name, CollectiveFn run, void* ctx, const std::source_location& loc) {
  SimThread* th = t_current;
  const unsigned base = th->linear - th->linear % 32;
  if (t_launch->threads.size() - base < 32)
    kernel_fail(std::string(name) + " at " + loc.file_name() + ":" + std::to_string(loc.line()) +
                " in a warp of fewer than 32 threads (the block size is not a multiple of 32)");
  th->collective = run;
  th->collective_ctx = ctx;
  warp_exchange(WarpOp::collective, name, 0xffffffffu, nullptr, 0, 0, 0, nullptr, loc);
}

int block_barrier(int pred, int mode, const std::source_location& loc) {
  SimThread* th = t_current;
  static const char* const names[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and",
                                      "__syncthreads_or"};
  th->wait_name = names[mode & 3];
  th->file = loc.file_name();
  th->line = loc.line();
  th->pred = pred;
  th->barrier_mode = mode;
  th->state = State::block_wait;
  yield_to_scheduler(th);
  return t_launch->barrier_result;
}

unsigned lane_id() { return t_current->linear % 32; }

unsigned thread_rank() { return t_current->linear; }

void add_thread_hooks(ThreadHooks hooks) { thread_hooks().push_back(hooks); }

void kernel_fail(const std::string& message) {
  SimThread* th = t_current;
  th->error = message;
  th->state = State::failed;
  yield_to_scheduler(th);
  throw KernelAbort{};
}

bool describe_current_thread(char* out, std::size_t out_size) {
  const Launch* L = t_launch;
  const SimThread* th = t_current;
  if (L == nullptr) return false;
  const uint3 b = t_block.block_idx;
  if (th == nullptr) {
    std::snprintf(out, out_size, "kernel '%s' block (%u,%u,%u)", L->spec->name, b.x, b.y, b.z);
  } else {
    std::snprintf(out, out_size, "kernel '%s' block (%u,%u,%u) thread (%u,%u,%u)", L->spec->name,
                  b.x, b.y, b.z, th->idx.x, th->idx.y, th->idx.z);
  }
  return true;
}

}  // namespace detail
}  // namespace safnet::sim
