// Backends by device: which one a device name means, created once per process.
#pragma once
#include <string>

#include "host/backend.h"

namespace safnet {

// "auto" is cuda:0 where a GPU is found and the CPU otherwise (with a one-line notice unless
// quiet); "cpu", "sim", "cuda" and "cuda:N" name one. Asking for CUDA where there is none is an
// error that says so.
Device resolve_device(const std::string& flag, bool quiet = false);

// On a GPU (or the simulator), prints the device memory the caching allocator peaked at.
void print_device_peak(Backend& backend);

// The process's backend for `device`, created on first use and kept for the process's lifetime.
Backend& backend_for(const Device& device);

}  // namespace safnet
