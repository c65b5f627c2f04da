// The simulated CUDA runtime: memory copies are bounds- and direction-checked, launch errors
// surface through SAFNET_CUDA_CHECK, streams and events run in order.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/launch.h"

namespace {

__global__ void fill_kernel(float* out, float v, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = v;
}

template <typename T, int kScale>
__global__ void scale_kernel(T* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= kScale;
}

__global__ void big_smem_kernel(float* out) {
  SAFNET_DYNAMIC_SHARED(float, buf);  // (blockDim.x)
  buf[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}

__constant__ float c_params[4];

__global__ void read_constant_kernel(float* out) { out[threadIdx.x] = c_params[threadIdx.x]; }

__device__ int g_calls;

__global__ void count_calls_kernel() { atomicAdd(&g_calls, 1); }

TEST(SimRuntime, KernelWithoutParametersRunsOncePerThread) {
  const int zero = 0;
  SAFNET_CUDA_CHECK(cudaMemcpyToSymbol(g_calls, &zero, sizeof zero));
  SAFNET_LAUNCH(count_calls_kernel, dim3(3, 2), dim3(7, 5), 0, nullptr);
  int calls = 0;
  SAFNET_CUDA_CHECK(cudaMemcpyFromSymbol(&calls, g_calls, sizeof calls));
  EXPECT_EQ(calls, 3 * 2 * 7 * 5);
}

TEST(SimRuntime, MallocCopyRoundTrip) {
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 10 * sizeof(float)), cudaSuccess);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(d) % 16, 0u);
  std::vector<float> h(10, 3.5f), back(10);
  ASSERT_EQ(cudaMemcpy(d, h.data(), 40, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(back.data(), d, 40, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(back, h);
  ASSERT_EQ(cudaFree(d), cudaSuccess);
}

TEST(SimRuntime, CopiesOutsideAnAllocationOrInTheWrongDirectionFail) {
  void* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 40), cudaSuccess);
  std::vector<char> h(64);
  EXPECT_EQ(cudaMemcpy(d, h.data(), 41, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(static_cast<char*>(d) + 8, h.data(), 33, cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(h.data(), d, 40, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d, h.data(), 40, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemset(d, 0, 41), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "reading the last error clears it";
  EXPECT_EQ(cudaMemcpy(d, h.data(), 40, cudaMemcpyDefault), cudaSuccess);
  EXPECT_EQ(cudaFree(static_cast<char*>(d) + 4), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFree(d), cudaErrorInvalidValue) << "double free";
  cudaGetLastError();
}

TEST(SimRuntime, CheckMacroNamesTheCallFileAndLine) {
  try {
    SAFNET_CUDA_CHECK(cudaFree(reinterpret_cast<void*>(0x1234)));
    FAIL() << "no throw";
  } catch (const safnet::CudaError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("runtime_test.cpp:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cudaFree(reinterpret_cast<void*>(0x1234))"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cudaErrorInvalidValue"), std::string::npos) << msg;
  }
  cudaGetLastError();
}

TEST(SimRuntime, LaunchOnAStreamWithEvents) {
  cudaStream_t s;
  cudaEvent_t start, stop;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  float* d = nullptr;
  SAFNET_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&d), 300 * sizeof(float), s));
  SAFNET_CUDA_CHECK(cudaEventRecord(start, s));
  SAFNET_LAUNCH(fill_kernel, 3, 128, 0, s, d, 1.5f, 300);
  SAFNET_LAUNCH((scale_kernel<float, 4>), 3, 128, 0, s, d, 300);
  SAFNET_CUDA_CHECK(cudaEventRecord(stop, s));
  SAFNET_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = -1;
  SAFNET_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  EXPECT_GE(ms, 0.0f);
  std::vector<float> h(300);
  SAFNET_CUDA_CHECK(cudaMemcpyAsync(h.data(), d, 1200, cudaMemcpyDeviceToHost, s));
  SAFNET_CUDA_CHECK(cudaStreamSynchronize(s));
  for (float v : h) ASSERT_EQ(v, 6.0f);
  SAFNET_CUDA_CHECK(cudaFreeAsync(d, s));
  SAFNET_CUDA_CHECK(cudaEventDestroy(start));
  SAFNET_CUDA_CHECK(cudaEventDestroy(stop));
  SAFNET_CUDA_CHECK(cudaStreamDestroy(s));
  EXPECT_EQ(cudaStreamDestroy(s), cudaErrorInvalidResourceHandle);
  cudaGetLastError();
}

TEST(SimRuntime, BadLaunchConfigurationsThrowThroughTheLaunchMacro) {
  float* d = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d), 4096 * sizeof(float)));
  EXPECT_THROW(SAFNET_LAUNCH(fill_kernel, 1, 1025, 0, nullptr, d, 0.0f, 1), safnet::CudaError);
  EXPECT_THROW(SAFNET_LAUNCH(fill_kernel, 0, 32, 0, nullptr, d, 0.0f, 1), safnet::CudaError);
  EXPECT_THROW(SAFNET_LAUNCH(fill_kernel, 1, dim3(1, 1, 65), 0, nullptr, d, 0.0f, 1),
               safnet::CudaError);
  cudaStream_t dead;
  SAFNET_CUDA_CHECK(cudaStreamCreate(&dead));
  SAFNET_CUDA_CHECK(cudaStreamDestroy(dead));
  EXPECT_THROW(SAFNET_LAUNCH(fill_kernel, 1, 32, 0, dead, d, 0.0f, 1), safnet::CudaError);
  SAFNET_CUDA_CHECK(cudaFree(d));
}

TEST(SimRuntime, DynamicSharedMemoryAboveDefaultNeedsTheAttribute) {
  const int block = 1024;
  const std::size_t smem = 64 * 1024;  // more than the 48 KiB default
  float* d = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d), block * sizeof(float)));
  EXPECT_THROW(SAFNET_LAUNCH(big_smem_kernel, 1, block, smem, nullptr, d), safnet::CudaError);
  SAFNET_CUDA_CHECK(cudaFuncSetAttribute(big_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem)));
  SAFNET_LAUNCH(big_smem_kernel, 1, block, smem, nullptr, d);
  std::vector<float> h(block);
  SAFNET_CUDA_CHECK(cudaMemcpy(h.data(), d, block * sizeof(float), cudaMemcpyDeviceToHost));
  for (int i = 0; i < block; ++i) ASSERT_EQ(h[i], static_cast<float>(block - 1 - i));
  SAFNET_CUDA_CHECK(cudaFree(d));
}

TEST(SimRuntime, ConstantMemoryThroughMemcpyToSymbol) {
  const float params[4] = {1, 2, 3, 4};
  SAFNET_CUDA_CHECK(cudaMemcpyToSymbol(c_params, params, sizeof params));
  EXPECT_EQ(cudaMemcpyToSymbol(c_params, params, sizeof params, 4), cudaErrorInvalidValue);
  cudaGetLastError();
  float* d = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d), sizeof params));
  SAFNET_LAUNCH(read_constant_kernel, 1, 4, 0, nullptr, d);
  float back[4];
  SAFNET_CUDA_CHECK(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(back[i], params[i]);
  SAFNET_CUDA_CHECK(cudaFree(d));
}

TEST(SimRuntime, FreshAllocationsArePoisoned) {
  float* d = nullptr;
  SAFNET_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&d), 8 * sizeof(float)));
  float h[8];
  SAFNET_CUDA_CHECK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
  for (float v : h) EXPECT_TRUE(v != v) << "uninitialised device memory reads as NaN";
  SAFNET_CUDA_CHECK(cudaFree(d));
}

}  // namespace
