// The simulator's NVTX event list.
#include "cuda/sim/nvtx.h"

#include <mutex>

namespace safnet::sim {
namespace {

std::mutex g_mutex;
std::vector<std::string> g_events;

// Long simulated runs push ranges per node and step: keep only the most recent events.
constexpr std::size_t kMaxEvents = 1 << 20;

void record(std::string event) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_events.size() >= kMaxEvents) g_events.erase(g_events.begin(), g_events.begin() + kMaxEvents / 2);
  g_events.push_back(std::move(event));
}

}  // namespace

void nvtx_push(const char* name) { record(std::string("push ") + (name != nullptr ? name : "")); }
void nvtx_pop() { record("pop"); }
void nvtx_mark(const char* name) { record(std::string("mark ") + (name != nullptr ? name : "")); }

std::vector<std::string> nvtx_events() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_events;
}

void nvtx_clear() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_events.clear();
}

}  // namespace safnet::sim
