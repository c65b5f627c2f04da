// Interleaved streams: with interleaving on, each non-default stream queues its work and the host's
// waits run the queues in a seeded random order, so tests see orders a GPU's streams could take.
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "cuda/sim/runtime.h"

namespace safnet::sim::detail {
namespace {

struct Item {
  CapturedWork work;
  std::function<bool()> ready;  // null: runnable once it is first in its queue
};

// Held while work runs, so that one stream's items never overlap and a drain sees whole items.
std::recursive_mutex g_mutex;
bool g_on = false;
std::mt19937_64 g_rng;
// Ordered by creation, not address, so that one seed gives one interleaving on every run.
std::uint64_t g_next_order = 0;
std::map<cudaStream_t, std::uint64_t> g_order;
std::map<std::uint64_t, std::pair<cudaStream_t, std::deque<Item>>> g_queues;

std::deque<Item>& queue_of(cudaStream_t s) {
  auto [it, fresh] = g_order.try_emplace(s, g_next_order);
  if (fresh) ++g_next_order;
  auto& q = g_queues[it->second];
  q.first = s;
  return q.second;
}

// Runs one item, first of a stream chosen at random among those whose first item is ready; false
// when none is (all queues empty, or every first item waits on an event no queue will record).
bool step(cudaError_t& first_error) {
  std::vector<std::pair<cudaStream_t, std::deque<Item>*>> runnable;
  for (auto& [order, q] : g_queues)
    if (!q.second.empty() && (!q.second.front().ready || q.second.front().ready())) runnable.emplace_back(q.first, &q.second);
  if (runnable.empty()) return false;
  auto [stream, q] = runnable[std::uniform_int_distribution<std::size_t>(0, runnable.size() - 1)(g_rng)];
  Item item = std::move(q->front());
  q->pop_front();
  const cudaError_t e = item.work(stream);
  if (e != cudaSuccess && first_error == cudaSuccess) first_error = e;
  return true;
}

bool all_empty() {
  for (auto& [order, q] : g_queues)
    if (!q.second.empty()) return false;
  return true;
}

cudaError_t drain_until(const std::function<bool()>& done) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  cudaError_t first_error = cudaSuccess;
  while (!done())
    if (!step(first_error)) {
      if (!all_empty() && first_error == cudaSuccess) first_error = cudaErrorIllegalState;  // a wait never met
      break;
    }
  return first_error == cudaSuccess ? cudaSuccess : set_last_error(first_error);
}

}  // namespace

bool stream_deferred(cudaStream_t stream) {
  if (stream == nullptr) return false;
  {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_on) return false;
  }
  return !stream_capturing(stream);
}

std::optional<cudaError_t> defer(cudaStream_t stream, CapturedWork work, std::function<bool()> ready) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  if (!g_on) return std::nullopt;
  if (stream == nullptr) {  // the legacy stream waits for every other
    if (const cudaError_t e = drain_all(); e != cudaSuccess) return e;
    return std::nullopt;
  }
  queue_of(stream).push_back(Item{std::move(work), std::move(ready)});
  return cudaSuccess;
}

cudaError_t drain_all() {
  return drain_until([] { return all_empty(); });
}

cudaError_t drain_stream(cudaStream_t stream) {
  if (stream == nullptr) return drain_all();
  return drain_until([stream] {
    auto it = g_order.find(stream);
    return it == g_order.end() || g_queues[it->second].second.empty();
  });
}

cudaError_t drain_while(const std::function<bool()>& pending) {
  return drain_until([&pending] { return !pending(); });
}

void forget_stream(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_mutex);
  auto it = g_order.find(stream);
  if (it == g_order.end()) return;
  g_queues.erase(it->second);
  g_order.erase(it);
}

}  // namespace safnet::sim::detail

namespace safnet::sim {

void set_stream_interleaving(std::uint64_t seed) {
  std::lock_guard<std::recursive_mutex> lock(detail::g_mutex);
  detail::drain_all();
  detail::g_on = seed != 0;
  detail::g_rng.seed(seed);
}

}  // namespace safnet::sim
