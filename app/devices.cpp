// Backends by device: the CPU, the CUDA backend on the simulator, and (where built) on GPUs.
#include "app/devices.h"

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "host/check.h"
#include "host/cuda/backend.h"

#if defined(SAFNET_HAVE_CUDA_GPU)
namespace safnet::cuda_backend::gpu {
int device_count();
std::string device_count_error();  // why there is none: cudaGetDeviceCount's error, or ""
std::unique_ptr<Backend> make_backend(int index);
}  // namespace safnet::cuda_backend::gpu
#endif

namespace safnet {

namespace {

int gpu_count() {
#if defined(SAFNET_HAVE_CUDA_GPU)
  return cuda_backend::gpu::device_count();
#else
  return 0;
#endif
}

// Why gpu_count() is 0, for the messages.
std::string gpu_count_error() {
#if defined(SAFNET_HAVE_CUDA_GPU)
  return cuda_backend::gpu::device_count_error();
#else
  return "built without CUDA";
#endif
}

}  // namespace

Device resolve_device(const std::string& flag, bool quiet) {
  if (flag == "auto") {
    if (gpu_count() > 0) return Device{DeviceKind::cuda, 0};
    if (!quiet) std::fprintf(stderr, "safnet: no CUDA GPU found (%s), running on the CPU\n", gpu_count_error().c_str());
    return Device{};
  }
  const Device d = Device::parse(flag);
  if (d.kind == DeviceKind::cuda) {
#if !defined(SAFNET_HAVE_CUDA_GPU)
    fail("--device ", flag, ": this safnet was built without CUDA (no nvcc at build time); use --device cpu or sim");
#endif
    const int n = gpu_count();
    if (d.index >= n)
      fail("--device ", flag, ": ", n == 0 ? "no CUDA GPU found on this machine (" + gpu_count_error() + ")"
                                         : "no such GPU (this machine has " + std::to_string(n) + ")");
  }
  return d;
}

void print_device_peak(Backend& backend) {
  if (!backend.device().is_cpu())
    std::fprintf(stderr, "%s: device memory peak %.1f MiB\n", backend.device().str().c_str(), backend.peak_bytes() / 1048576.0);
}

Backend& backend_for(const Device& device) {
  static std::mutex mu;
  // Never destroyed: tensors freed during static destruction may still need their backend.
  static auto* backends = new std::map<std::string, std::unique_ptr<Backend>>;
  if (device.is_cpu()) return cpu_backend();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*backends)[device.str()];
  if (!slot) {
    if (device.kind == DeviceKind::sim) slot = cuda_backend::sim::make_backend(0);
#if defined(SAFNET_HAVE_CUDA_GPU)
    else slot = cuda_backend::gpu::make_backend(device.index);
#else
    else fail("device ", device.str(), ": this safnet was built without CUDA");
#endif
  }
  return *slot;
}

}  // namespace safnet
