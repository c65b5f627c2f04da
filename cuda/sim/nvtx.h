// The simulator's NVTX: ranges and marks go to a process-wide list that tests read back.
#pragma once
#include <string>
#include <vector>

namespace safnet::sim {

void nvtx_push(const char* name);  // records "push NAME"
void nvtx_pop();                   // records "pop"
void nvtx_mark(const char* name);  // records "mark NAME"
// Everything recorded since the last clear, in call order, from all threads.
std::vector<std::string> nvtx_events();
void nvtx_clear();

}  // namespace safnet::sim
