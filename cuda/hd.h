// Portability macros for code compiled by both the host compiler and nvcc.
#pragma once

#if defined(__CUDACC__)
#define SAFNET_HD __host__ __device__ __forceinline__
#else
#define SAFNET_HD inline
#endif
