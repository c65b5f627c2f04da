// Portability macros for code compiled by both the host compiler and nvcc.
#pragma once

#if defined(__CUDACC__)
#define SAFNET_HD __host__ __device__ __forceinline__
#else
#define SAFNET_HD inline
#endif

// Code built both for the GPU and for the simulator lives in an inline namespace named after the
// build, so one program can link both (`safnet::cuda::conv2d_forward` names either) without clashes.
#if defined(__CUDACC__) || defined(SAFNET_CUDA_REAL)
#define SAFNET_BUILD gpu
#else
#define SAFNET_BUILD sim
#endif
