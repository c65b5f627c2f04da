#!/usr/bin/env bash
# Configures and builds safnet into build/ (Release). With --target T (repeatable) only those
# targets are built (the demo builds just `safnet`); otherwise everything, tests included.
# Where nvcc is present the CUDA kernels are built for this machine's GPU (nvidia-smi), else for
# sm_90; -DCMAKE_CUDA_ARCHITECTURES="80;90" (or SAFNET_CUDA_ARCHS) asks for others.
# Usage: tools/build.sh [--target T]... [cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
targets=()
options=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) targets+=(--target "$2"); shift 2 ;;
    *) options+=("$1"); shift ;;
  esac
done
arch=${SAFNET_CUDA_ARCHS:-}
if [ -z "$arch" ] && command -v nvidia-smi >/dev/null 2>&1; then
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d '.[:space:]' || true)
fi
# ccache (tools/setup.sh installs it) also serves the GPU bundle's build the objects built here.
launchers=()
if command -v ccache >/dev/null; then
  launchers=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" "${launchers[@]}" \
  "${options[@]}" >/dev/null
cmake --build build -j "$(nproc)" "${targets[@]}"
