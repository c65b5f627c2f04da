// The simulated CUDA runtime API: memory, streams, events and errors for kernels run on the CPU.
// Names and signatures follow cuda_runtime.h so backend code compiles unchanged. Streams and events
// are executed in order: every call completes before it returns, unless interleaving is on
// (set_stream_interleaving). A capturing stream records its
// work into a CUDA graph instead (cuda/sim/graph.cpp), with the real runtime's capture rules.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <type_traits>

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureMerge = 902,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorStreamCaptureIsolation = 905,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorCapturedEvent = 907,
  cudaErrorStreamCaptureWrongThread = 908,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};

enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

constexpr unsigned int cudaStreamDefault = 0x0;
constexpr unsigned int cudaStreamNonBlocking = 0x1;
constexpr unsigned int cudaEventDefault = 0x0;
constexpr unsigned int cudaEventBlockingSync = 0x1;
constexpr unsigned int cudaEventDisableTiming = 0x2;

// The subset of cudaDeviceProp that backends read for reports and tuning.
struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  std::size_t sharedMemPerBlockOptin;
  int warpSize;
  int maxThreadsPerBlock;
  int multiProcessorCount;
  int major;
  int minor;
};

// The runtime functions live in a namespace (brought into the global one below) so that a program
// linking both the simulator and the real CUDA runtime has no clashing symbols.
namespace safnet::sim::api {

const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();

cudaError_t cudaMalloc(void** dev_ptr, std::size_t size);
cudaError_t cudaFree(void* dev_ptr);
cudaError_t cudaMallocAsync(void** dev_ptr, std::size_t size, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* dev_ptr, cudaStream_t stream);
cudaError_t cudaMallocHost(void** ptr, std::size_t size);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dev_ptr, int value, std::size_t count);
cudaError_t cudaMemsetAsync(void* dev_ptr, int value, std::size_t count,
                            cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// Graph capture (cuda/sim/graph.cpp). Capture of a stream's work only: the cross-stream forks and
// joins of real captures (an event recorded in a capture waited on by another stream) are refused
// with cudaErrorStreamCaptureUnsupported.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <typename T>
cudaError_t cudaFuncSetAttribute(T* func, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}

}  // namespace safnet::sim::api

namespace safnet::sim::detail {
// Records `error` as the calling thread's last error and returns it.
cudaError_t set_last_error(cudaError_t error);
bool stream_is_valid(cudaStream_t stream);
// The dynamic shared memory a kernel may request: 48 KiB unless raised by cudaFuncSetAttribute.
std::size_t max_dynamic_smem(const void* kernel);

// Work a capturing stream recorded; a graph launch runs it on the launch's stream.
using CapturedWork = std::function<cudaError_t(cudaStream_t)>;
// True while `stream` is in a capture sequence, active or invalidated.
bool stream_capturing(cudaStream_t stream);
// Appends `work` to the capture of `stream`: nullopt when the stream is not capturing (run the work
// now), cudaSuccess when recorded, cudaErrorStreamCaptureInvalidated when the capture is invalid.
std::optional<cudaError_t> capture_record(cudaStream_t stream, CapturedWork work);
// Marks the capture of `stream` invalid (a failed call on it), as the real runtime does.
void capture_invalidate(cudaStream_t stream);
// For calls the real runtime forbids during capture (cudaMalloc, cudaMemcpy, device syncs): when a
// capture in global mode, or one begun by this thread in thread-local mode, is under way, invalidates
// it and returns cudaErrorStreamCaptureUnsupported; otherwise cudaSuccess.
cudaError_t capture_check_unsafe_call();
// For synchronising or querying `stream`: cudaErrorStreamCaptureUnsupported (the capture is
// invalidated) when it is capturing; the legacy stream counts as an unsafe call.
cudaError_t capture_check_stream_sync(cudaStream_t stream);
// A destroyed stream's capture is dropped.
void capture_forget(cudaStream_t stream);

// Interleaved streams (cuda/sim/streams.cpp). True when work issued on `stream` is queued rather
// than run: interleaving is on and the stream is neither the legacy one nor capturing.
bool stream_deferred(cudaStream_t stream);
// Queues `work` on `stream`, to run once it is first in the queue and `ready` (when given) holds:
// nullopt when the stream runs work at once (interleaving off; the legacy stream, after every
// queue has run).
std::optional<cudaError_t> defer(cudaStream_t stream, CapturedWork work, std::function<bool()> ready = {});
// Runs queued work, streams interleaved at random, until every queue is empty / `stream`'s is /
// `pending` turns false. Returns the first error of the work run (also the last error).
cudaError_t drain_all();
cudaError_t drain_stream(cudaStream_t stream);
cudaError_t drain_while(const std::function<bool()>& pending);
// A destroyed stream's queue is dropped.
void forget_stream(cudaStream_t stream);
}  // namespace safnet::sim::detail

namespace safnet::sim {
// Makes cudaMalloc fail with cudaErrorMemoryAllocation once the live device bytes would exceed
// `bytes` (0: no limit, the default), so out-of-memory paths can be tested.
void set_device_memory_limit(std::size_t bytes);
// With a nonzero seed every stream but the legacy one queues its work, and the host's waits
// (stream, event and device synchronisations, synchronous copies, cudaFree, work on the legacy
// stream) run the queues in an order drawn from the seed: each stream's work in its own order,
// the streams interleaved at random, waits on events honoured. 0 (the default) runs work as it is
// issued, first running whatever is queued.
void set_stream_interleaving(std::uint64_t seed);
// set_stream_interleaving(seed) for a scope, off again however the scope ends.
struct ScopedStreamInterleaving {
  explicit ScopedStreamInterleaving(std::uint64_t seed) { set_stream_interleaving(seed); }
  ~ScopedStreamInterleaving() { set_stream_interleaving(0); }
  ScopedStreamInterleaving(const ScopedStreamInterleaving&) = delete;
  ScopedStreamInterleaving& operator=(const ScopedStreamInterleaving&) = delete;
};
}  // namespace safnet::sim

namespace safnet::sim::api {

// __constant__ and __device__ variables are plain host objects, so a symbol copy is a bounded memcpy.
template <typename T>
cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, std::size_t count,
                               std::size_t offset = 0,
                               cudaMemcpyKind = cudaMemcpyHostToDevice) {
  static_assert(std::is_trivially_copyable_v<T>, "symbols must be trivially copyable");
  if (const cudaError_t e = safnet::sim::detail::capture_check_unsafe_call(); e != cudaSuccess)
    return e;
  if (offset > sizeof(T) || count > sizeof(T) - offset || src == nullptr)
    return safnet::sim::detail::set_last_error(cudaErrorInvalidValue);
  std::memcpy(reinterpret_cast<unsigned char*>(&symbol) + offset, src, count);
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, std::size_t count,
                                 std::size_t offset = 0,
                                 cudaMemcpyKind = cudaMemcpyDeviceToHost) {
  static_assert(std::is_trivially_copyable_v<T>, "symbols must be trivially copyable");
  if (const cudaError_t e = safnet::sim::detail::capture_check_unsafe_call(); e != cudaSuccess)
    return e;
  if (offset > sizeof(T) || count > sizeof(T) - offset || dst == nullptr)
    return safnet::sim::detail::set_last_error(cudaErrorInvalidValue);
  std::memcpy(dst, reinterpret_cast<const unsigned char*>(&symbol) + offset, count);
  return cudaSuccess;
}

}  // namespace safnet::sim::api

using namespace safnet::sim::api;  // NOLINT: kernels call the runtime unqualified, as under nvcc
