# Build options for GPU machines and for the self-contained GPU bundle (tools/gpu_bundle.sh, docs/GPU.md).
# Included from the top CMakeLists.txt before any find_package.

option(SAFNET_BLAS "CPU GEMMs through BLAS (OpenBLAS); OFF: the own blocked GEMM of host/cpu/gemm.cpp" ON)
option(SAFNET_STATIC "Link every library but glibc and the CUDA driver statically (the GPU bundle)" OFF)

# Line tables in every GPU kernel, so Nsight Compute and compute-sanitizer name source lines. It
# changes no generated instruction.
add_compile_options($<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)

if(SAFNET_STATIC)
  # Debian ships static archives of zlib, libjpeg, libpng, boost_context and GoogleTest: prefer
  # them; nlohmann-json is header only; cudart is linked statically anyway (CUDA::cudart_static).
  # .so stays second for what must be shared (FindCUDAToolkit wants libcudart.so to exist); the
  # bundle test (tests/tools/bundle_test.sh) checks with ldd that nothing else came in shared.
  set(CMAKE_FIND_LIBRARY_SUFFIXES .a .so)
  set(Boost_USE_STATIC_LIBS ON)
  set(ZLIB_USE_STATIC_LIBS ON)
  # OpenMP: gcc's own libgomp.a instead of libgomp.so.1 (FindOpenMP keeps a cached path).
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libgomp.a
                  OUTPUT_VARIABLE safnet_libgomp_a OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT IS_ABSOLUTE "${safnet_libgomp_a}" OR NOT EXISTS "${safnet_libgomp_a}")
    message(FATAL_ERROR "SAFNET_STATIC: ${CMAKE_CXX_COMPILER} has no libgomp.a")
  endif()
  set(OpenMP_gomp_LIBRARY "${safnet_libgomp_a}" CACHE FILEPATH "libgomp, static for SAFNET_STATIC" FORCE)
  add_link_options(-static-libstdc++ -static-libgcc)
  if(SAFNET_BLAS)
    message(FATAL_ERROR "SAFNET_STATIC needs SAFNET_BLAS=OFF: Debian's OpenBLAS has no usable static archive here")
  endif()
endif()
