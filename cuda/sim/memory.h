// Guarded simulated memory: every region ends exactly at a PROT_NONE page, so overruns fault.
#pragma once
#include <cstddef>
#include <string>

namespace safnet::sim {

enum class RegionKind { device, dynamic_shared };

// Maps `size` bytes (32-byte aligned start) between two guard pages and registers the region.
// The up-to-31 bytes between the end and the trailing guard, and the bytes between the leading
// guard and the start, hold a canary that check_canaries() verifies. Returns nullptr on failure.
void* region_alloc(std::size_t size, RegionKind kind);
// Unmaps a region; false when `ptr` is not the start of a live region of that kind.
bool region_free(void* ptr, RegionKind kind);
// True when [ptr, ptr + count) lies inside one live region of that kind.
bool region_contains(const void* ptr, std::size_t count, RegionKind kind);
// True when `ptr` points into (or at the guard pages of) any live region of that kind.
bool region_owns(const void* ptr, RegionKind kind);
// The start of the live region of that kind `ptr` points into, or nullptr.
const void* region_start(const void* ptr, RegionKind kind);
// Fills a region's user bytes with 0xff, so reads of never-written memory give NaN or -1.
void region_poison(void* ptr, std::size_t size);
// Sum of the sizes of live device regions.
std::size_t device_bytes_in_use();

// Writes into the canary bytes around any live region: a description of the first one found
// (its canary is restored), or an empty string.
std::string check_canaries();

// For the fault handler: describes `addr` relative to the region whose guard it hit, into `out`.
// Returns false when `addr` is in no region's mapping. Takes no lock (the faulting thread holds
// the launch; regions only change outside launches).
bool describe_address(const void* addr, char* out, std::size_t out_size);

}  // namespace safnet::sim
