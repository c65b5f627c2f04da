// The simulated CUDA runtime: guarded device memory, in-order streams and events, error state.
#include "cuda/sim/runtime.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "cuda/sim/counters.h"
#include "cuda/sim/memory.h"

struct CUstream_st {
  unsigned int flags;
};
struct CUevent_st {
  unsigned int flags;
  bool recorded;
  bool captured;  // last recorded into a capture: its completion is meaningless until replayed
  std::chrono::steady_clock::time_point time;
  // Records issued and run: on an interleaved stream a record runs when its queue reaches it.
  std::uint64_t issued, done;
};

namespace safnet::sim::detail {
namespace {

thread_local cudaError_t t_last_error = cudaSuccess;
std::mutex g_handles_mutex;
std::set<const CUstream_st*> g_streams;
std::set<const CUevent_st*> g_events;
std::map<const void*, std::size_t> g_smem_limits;
constexpr std::size_t kDefaultDynamicSmem = 48 * 1024;
constexpr std::size_t kOptinDynamicSmem = 227 * 1024;  // an H100's opt-in limit
std::atomic<std::size_t> g_device_limit{0};

bool event_is_valid(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  return g_events.count(e) != 0;
}

// Checks that a copy's pointers match its direction: the device side must lie inside one
// allocation and the host side inside none.
bool copy_is_valid(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  auto dev = [count](const void* p) { return region_contains(p, count, RegionKind::device); };
  auto host = [](const void* p) { return !region_owns(p, RegionKind::device); };
  switch (kind) {
    case cudaMemcpyHostToHost: return host(dst) && host(src);
    case cudaMemcpyHostToDevice: return dev(dst) && host(src);
    case cudaMemcpyDeviceToHost: return host(dst) && dev(src);
    case cudaMemcpyDeviceToDevice: return dev(dst) && dev(src);
    case cudaMemcpyDefault:
      return (host(dst) || dev(dst)) && (host(src) || dev(src));
  }
  return false;
}

cudaError_t copy_error(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  if (count == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return cudaErrorInvalidValue;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return cudaErrorInvalidMemcpyDirection;
  return copy_is_valid(dst, src, count, kind) ? cudaSuccess : cudaErrorInvalidValue;
}

cudaError_t memset_error(void* dev_ptr, std::size_t count) {
  if (count == 0) return cudaSuccess;
  return region_contains(dev_ptr, count, RegionKind::device) ? cudaSuccess : cudaErrorInvalidValue;
}

// The work of cudaMemcpy, without the capture rules, for direct calls and for graph replays.
cudaError_t copy_now(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  if (const cudaError_t e = copy_error(dst, src, count, kind); e != cudaSuccess)
    return set_last_error(e);
  if (count != 0) std::memmove(dst, src, count);
  count_copy(dst, src, count, kind);
  return cudaSuccess;
}

cudaError_t memset_now(void* dev_ptr, int value, std::size_t count) {
  if (const cudaError_t e = memset_error(dev_ptr, count); e != cudaSuccess) return set_last_error(e);
  if (count != 0) std::memset(dev_ptr, value, count);
  return cudaSuccess;
}

// A capture checks a call's arguments when it is recorded, as the real runtime does; a bad one
// invalidates the capture.
cudaError_t check_captured(cudaStream_t stream, cudaError_t error) {
  if (error == cudaSuccess) return cudaSuccess;
  capture_invalidate(stream);
  return set_last_error(error);
}

}  // namespace

cudaError_t set_last_error(cudaError_t error) {
  if (error != cudaSuccess) t_last_error = error;
  return error;
}

bool stream_is_valid(cudaStream_t stream) {
  if (stream == nullptr) return true;
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  return g_streams.count(stream) != 0;
}

std::size_t max_dynamic_smem(const void* kernel) {
  std::lock_guard<std::mutex> lock(g_handles_mutex);
  auto it = g_smem_limits.find(kernel);
  return it == g_smem_limits.end() ? kDefaultDynamicSmem : it->second;
}

}  // namespace safnet::sim::detail

namespace safnet::sim::api {

using safnet::sim::RegionKind;
using safnet::sim::detail::capture_check_stream_sync;
using safnet::sim::detail::capture_check_unsafe_call;
using safnet::sim::detail::capture_record;
using safnet::sim::detail::set_last_error;

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureMerge: return "cudaErrorStreamCaptureMerge";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    case cudaErrorStreamCaptureUnjoined: return "cudaErrorStreamCaptureUnjoined";
    case cudaErrorStreamCaptureIsolation: return "cudaErrorStreamCaptureIsolation";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorCapturedEvent: return "cudaErrorCapturedEvent";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorIllegalState: return "operation not permitted in the current state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureMerge: return "operation would result in a merge of separate capture sequences";
    case cudaErrorStreamCaptureUnmatched: return "capture was not ended in the same stream as it began";
    case cudaErrorStreamCaptureUnjoined: return "capturing stream has unjoined work";
    case cudaErrorStreamCaptureIsolation: return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorStreamCaptureWrongThread: return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  return std::exchange(safnet::sim::detail::t_last_error, cudaSuccess);
}

cudaError_t cudaPeekAtLastError() { return safnet::sim::detail::t_last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return set_last_error(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : set_last_error(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return set_last_error(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (device != 0) return set_last_error(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::strcpy(prop->name, "safnet CUDA simulator");
  prop->totalGlobalMem = std::size_t{16} << 30;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 227 * 1024;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->multiProcessorCount = 1;
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (device != 0) return set_last_error(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = 1; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; break;
    default: return set_last_error(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  if (const cudaError_t e = capture_check_unsafe_call(); e != cudaSuccess) return e;
  if (const cudaError_t e = safnet::sim::detail::drain_all(); e != cudaSuccess) return e;
  safnet::sim::detail::count_host_sync();
  return cudaSuccess;
}
cudaError_t cudaDeviceReset() { return cudaSuccess; }

cudaError_t cudaMalloc(void** dev_ptr, std::size_t size) {
  if (const cudaError_t e = capture_check_unsafe_call(); e != cudaSuccess) return e;
  if (dev_ptr == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (size == 0) {
    *dev_ptr = nullptr;
    return cudaSuccess;
  }
  const std::size_t limit = safnet::sim::detail::g_device_limit.load();
  if (limit != 0 && (size > limit || safnet::sim::device_bytes_in_use() > limit - size)) {
    *dev_ptr = nullptr;
    return set_last_error(cudaErrorMemoryAllocation);
  }
  *dev_ptr = safnet::sim::region_alloc(size, RegionKind::device);
  return *dev_ptr != nullptr ? cudaSuccess : set_last_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void* dev_ptr) {
  if (const cudaError_t e = capture_check_unsafe_call(); e != cudaSuccess) return e;
  if (const cudaError_t e = safnet::sim::detail::drain_all(); e != cudaSuccess) return e;
  if (dev_ptr == nullptr) return cudaSuccess;
  return safnet::sim::region_free(dev_ptr, RegionKind::device)
             ? cudaSuccess
             : set_last_error(cudaErrorInvalidValue);
}

// Memory nodes are not simulated: stream-ordered allocation inside a capture is refused.
cudaError_t cudaMallocAsync(void** dev_ptr, std::size_t size, cudaStream_t stream) {
  if (!safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (const cudaError_t e = capture_check_stream_sync(stream); e != cudaSuccess) return e;
  return cudaMalloc(dev_ptr, size);
}

cudaError_t cudaFreeAsync(void* dev_ptr, cudaStream_t stream) {
  if (!safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (const cudaError_t e = capture_check_stream_sync(stream); e != cudaSuccess) return e;
  return cudaFree(dev_ptr);
}

cudaError_t cudaMallocHost(void** ptr, std::size_t size) {
  if (const cudaError_t e = capture_check_unsafe_call(); e != cudaSuccess) return e;
  if (ptr == nullptr) return set_last_error(cudaErrorInvalidValue);
  *ptr = std::malloc(size == 0 ? 1 : size);
  return *ptr != nullptr ? cudaSuccess : set_last_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  if (const cudaError_t e = capture_check_unsafe_call(); e != cudaSuccess) return e;
  if (const cudaError_t e = safnet::sim::detail::drain_all(); e != cudaSuccess) return e;
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return set_last_error(cudaErrorInvalidValue);
  const std::size_t limit = safnet::sim::detail::g_device_limit.load();
  *total_bytes = limit != 0 ? limit : std::size_t{16} << 30;
  const std::size_t used = safnet::sim::device_bytes_in_use();
  *free_bytes = used < *total_bytes ? *total_bytes - used : 0;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind) {
  if (const cudaError_t e = capture_check_unsafe_call(); e != cudaSuccess) return e;
  if (const cudaError_t e = safnet::sim::detail::drain_all(); e != cudaSuccess) return e;
  const cudaError_t e = safnet::sim::detail::copy_now(dst, src, count, kind);
  // The host waits for the copy, and for the work queued before it, unless nothing touched the device.
  if (e == cudaSuccess && count != 0 && kind != cudaMemcpyHostToHost) safnet::sim::detail::count_host_sync();
  return e;
}

// A captured copy is checked now, as the real runtime checks its arguments, and again at replay,
// when the memory may have been freed; the source is read at replay, not at capture.
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (!safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (safnet::sim::detail::stream_capturing(stream)) {
    const cudaError_t e = safnet::sim::detail::copy_error(dst, src, count, kind);
    if (e != cudaSuccess) return safnet::sim::detail::check_captured(stream, e);
  }
  if (auto r = capture_record(stream, [=](cudaStream_t) {
        return safnet::sim::detail::copy_now(dst, src, count, kind);
      }))
    return *r == cudaSuccess ? cudaSuccess : set_last_error(*r);
  return safnet::sim::detail::copy_now(dst, src, count, kind);
}

cudaError_t cudaMemset(void* dev_ptr, int value, std::size_t count) {
  if (const cudaError_t e = capture_check_unsafe_call(); e != cudaSuccess) return e;
  if (const cudaError_t e = safnet::sim::detail::drain_all(); e != cudaSuccess) return e;
  return safnet::sim::detail::memset_now(dev_ptr, value, count);
}

cudaError_t cudaMemsetAsync(void* dev_ptr, int value, std::size_t count, cudaStream_t stream) {
  if (!safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (safnet::sim::detail::stream_capturing(stream)) {
    const cudaError_t e = safnet::sim::detail::memset_error(dev_ptr, count);
    if (e != cudaSuccess) return safnet::sim::detail::check_captured(stream, e);
  }
  if (auto r = capture_record(stream, [=](cudaStream_t) {
        return safnet::sim::detail::memset_now(dev_ptr, value, count);
      }))
    return *r == cudaSuccess ? cudaSuccess : set_last_error(*r);
  return safnet::sim::detail::memset_now(dev_ptr, value, count);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (stream == nullptr) return set_last_error(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags};
  std::lock_guard<std::mutex> lock(safnet::sim::detail::g_handles_mutex);
  safnet::sim::detail::g_streams.insert(*stream);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  {
    std::lock_guard<std::mutex> lock(safnet::sim::detail::g_handles_mutex);
    if (stream == nullptr || safnet::sim::detail::g_streams.erase(stream) == 0)
      return set_last_error(cudaErrorInvalidResourceHandle);
  }
  safnet::sim::detail::drain_stream(stream);
  safnet::sim::detail::forget_stream(stream);
  safnet::sim::detail::capture_forget(stream);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  const cudaError_t e = cudaStreamQuery(stream);
  if (e == cudaSuccess) safnet::sim::detail::count_host_sync();
  return e;
}

// Queued work is run, so the stream has always finished.
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (!safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (const cudaError_t e = capture_check_stream_sync(stream); e != cudaSuccess) return e;
  return safnet::sim::detail::drain_stream(stream);
}

// Work runs in call order, so a wait has nothing to wait for unless the stream is interleaved: then
// its later work waits until the event's last record has run. Within a capture only waits on
// events of the same capture are allowed (cross-stream capture is not simulated).
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (!safnet::sim::detail::stream_is_valid(stream) || !safnet::sim::detail::event_is_valid(event))
    return set_last_error(cudaErrorInvalidResourceHandle);
  const bool capturing = safnet::sim::detail::stream_capturing(stream);
  if (event->captured && !capturing) return set_last_error(cudaErrorStreamCaptureUnsupported);
  if (capturing && !event->captured) {
    safnet::sim::detail::capture_invalidate(stream);
    return set_last_error(cudaErrorStreamCaptureIsolation);
  }
  if (safnet::sim::detail::stream_deferred(stream)) {
    const std::uint64_t target = event->issued;
    if (auto r = safnet::sim::detail::defer(
            stream, [](cudaStream_t) { return cudaSuccess; }, [event, target] { return event->done >= target; }))
      return *r == cudaSuccess ? cudaSuccess : set_last_error(*r);
  }
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr) return set_last_error(cudaErrorInvalidValue);
  *event = new CUevent_st{flags, false, false, {}, 0, 0};
  std::lock_guard<std::mutex> lock(safnet::sim::detail::g_handles_mutex);
  safnet::sim::detail::g_events.insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(safnet::sim::detail::g_handles_mutex);
  if (event == nullptr || safnet::sim::detail::g_events.erase(event) == 0)
    return set_last_error(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!safnet::sim::detail::event_is_valid(event) || !safnet::sim::detail::stream_is_valid(stream))
    return set_last_error(cudaErrorInvalidResourceHandle);
  event->captured = safnet::sim::detail::stream_capturing(stream);
  if (event->captured) return cudaSuccess;
  const std::uint64_t gen = ++event->issued;
  auto mark = [event, gen](cudaStream_t) {
    event->done = gen;
    event->recorded = true;
    event->time = std::chrono::steady_clock::now();
    return cudaSuccess;
  };
  if (auto r = safnet::sim::detail::defer(stream, mark)) return *r == cudaSuccess ? cudaSuccess : set_last_error(*r);
  return mark(stream);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  const cudaError_t e = cudaEventQuery(event);
  if (e == cudaSuccess) safnet::sim::detail::count_host_sync();
  return e;
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (!safnet::sim::detail::event_is_valid(event))
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (event->captured) return set_last_error(cudaErrorCapturedEvent);
  return safnet::sim::detail::drain_while([event] { return event->done < event->issued; });
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (!safnet::sim::detail::event_is_valid(start) || !safnet::sim::detail::event_is_valid(end) ||
      ((start->flags | end->flags) & cudaEventDisableTiming) != 0)
    return set_last_error(cudaErrorInvalidResourceHandle);
  if (start->captured || end->captured) return set_last_error(cudaErrorCapturedEvent);
  if (!start->recorded || !end->recorded) return set_last_error(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (func == nullptr) return set_last_error(cudaErrorInvalidValue);
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<std::size_t>(value) > safnet::sim::detail::kOptinDynamicSmem)
    return set_last_error(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(safnet::sim::detail::g_handles_mutex);
  safnet::sim::detail::g_smem_limits[func] = static_cast<std::size_t>(value);
  return cudaSuccess;
}

}  // namespace safnet::sim::api

namespace safnet::sim {

void set_device_memory_limit(std::size_t bytes) { detail::g_device_limit.store(bytes); }

}  // namespace safnet::sim
