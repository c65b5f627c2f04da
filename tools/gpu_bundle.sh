#!/usr/bin/env bash
# Builds the self-contained GPU bundle on this machine (no GPU needed): safnet, the GPU kernel tests
# (test_gpu) and the GPU benchmark (bench_gpu) for one architecture, with every library but glibc
# and the CUDA driver linked statically and no BLAS (SAFNET_BLAS=OFF, SAFNET_STATIC=ON), plus a
# CIFAR-10 slice and the scripts, into gpu-bundle/ (git-ignored, under 48 MiB). Copy that folder to
# a GPU machine and run `gpu-bundle/tools/gpu_check.sh` there (docs/GPU.md).
#
# Usage: tools/gpu_bundle.sh [ARCH]          ARCH: compute capability without the dot [90] (H100/H200)
# Environment: SAFNET_BUNDLE_DIR (output folder) [gpu-bundle], SAFNET_BUNDLE_BUILD (build folder)
#   [build-bundle], SAFNET_CIFAR (CIFAR-10 binary files) [../shared/data/cifar10-subset],
#   SAFNET_BUNDLE_TRAIN (training images per data_batch file, 5 files) [1000],
#   SAFNET_BUNDLE_TEST (test images) [1000].
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-90}
[[ $arch =~ ^[0-9]{2,3}[af]?$ ]] || { echo "gpu_bundle: ARCH is a compute capability like 90 or 100, got '$arch'" >&2; exit 2; }
out=${SAFNET_BUNDLE_DIR:-gpu-bundle}
build=${SAFNET_BUNDLE_BUILD:-build-bundle}
cifar=${SAFNET_CIFAR:-../shared/data/cifar10-subset}
per_file=${SAFNET_BUNDLE_TRAIN:-1000}
n_test=${SAFNET_BUNDLE_TEST:-1000}
limit_mib=48
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "gpu_bundle: needs nvcc (CUDA toolkit)" >&2; exit 1; }
if [ ! -f "$cifar/test_batch.bin" ]; then
  echo "gpu_bundle: no CIFAR-10 binary files in $cifar (set SAFNET_CIFAR)" >&2
  # In the suite on a fresh clone (no ../shared beside it) this is a skip, unless everything must run.
  [ "${SAFNET_BUNDLE_MISSING_DATA:-}" = skip ] && [ "${SAFNET_REQUIRE_ALL:-0}" = 0 ] && exit 77
  exit 1
fi

t0=$(date +%s)
launchers=()
if command -v ccache >/dev/null; then
  launchers=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
# The card's machine code only ("-real"): the bundle runs on the one architecture it names, so PTX
# for a driver to compile would only double the kernels' share of each binary. The fatbinaries are
# compressed for size: each of the three binaries carries every kernel.
cuda_flags="--compress-mode=size"
# Reconfigure only when the arch or the flags changed or the folder is new: an unchanged build is a no-op.
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -qE "^CMAKE_CUDA_ARCHITECTURES:[A-Z]+=$arch-real\$" "$build/CMakeCache.txt" ||
  ! grep -qxF "CMAKE_CUDA_FLAGS:STRING=$cuda_flags" "$build/CMakeCache.txt"; then
  mkdir -p "$build"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch-real" \
    -DCMAKE_CUDA_FLAGS="$cuda_flags" -DSAFNET_BLAS=OFF -DSAFNET_STATIC=ON "${launchers[@]}" >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; exit 1; }
fi
cmake --build "$build" -j"$(nproc)" --target safnet test_gpu bench_gpu
t_build=$(( $(date +%s) - t0 ))

rm -rf "$out"
mkdir -p "$out/bin" "$out/tools" "$out/data/cifar10"
for b in safnet tests/test_gpu tests/bench_gpu; do
  # Debug sections go (symbols stay, for compute-sanitizer's host backtraces); the kernels'
  # fatbinary with its -lineinfo line tables is a data section and stays.
  strip --strip-debug -o "$out/bin/$(basename "$b")" "$build/$b"
done
cp tools/gpu_check.sh tools/torch_reference.py tools/torch_campaign.py "$out/tools/"
# A CIFAR-10 slice: the first images of each training file and of the test file, whole records.
rec=3073
for i in 1 2 3 4 5; do head -c $((per_file * rec)) "$cifar/data_batch_$i.bin" >"$out/data/cifar10/data_batch_$i.bin"; done
head -c $((n_test * rec)) "$cifar/test_batch.bin" >"$out/data/cifar10/test_batch.bin"
[ -f "$cifar/batches.meta.txt" ] && cp "$cifar/batches.meta.txt" "$out/data/cifar10/"

glibc=$(objdump -T "$out"/bin/* | grep -o 'GLIBC_[0-9.]*' | sort -t. -k2,2n -k3,3n -u | tail -1)
{
  echo "safnet GPU bundle"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!gpu-bundle' || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -m), $(nvcc --version 2>/dev/null | tail -1 || /usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "arch: sm_$arch; CPU GEMM: own (SAFNET_BLAS=OFF); needs glibc >= ${glibc#GLIBC_} and an NVIDIA driver for CUDA 13"
  echo "data: CIFAR-10, $((5 * per_file)) training images (5 x $per_file), $n_test test images"
  echo "run: gpu-bundle/tools/gpu_check.sh [--dry-run] [--out DIR]   (see docs/GPU.md)"
} >"$out/MANIFEST"

size_kib=$(du -sk "$out" | cut -f1)
printf 'gpu_bundle: %s: %s MiB (limit %s MiB), build %ss\n' "$out" "$(awk "BEGIN{printf \"%.1f\", $size_kib/1024}")" \
  "$limit_mib" "$t_build"
ls -l "$out/bin" | awk 'NR>1 {printf "  bin/%-10s %6.1f MiB\n", $9, $5/1048576}'
if (( size_kib > limit_mib * 1024 )); then
  echo "gpu_bundle: $out is over $limit_mib MiB; lower SAFNET_BUNDLE_TRAIN/SAFNET_BUNDLE_TEST" >&2
  exit 1
fi
