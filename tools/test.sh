#!/usr/bin/env bash
# Builds safnet and runs every test: the suite in Release, the suite again under AddressSanitizer
# and UndefinedBehaviorSanitizer, and every libFuzzer target for a bounded time.
# Usage: tools/test.sh [--quick]   (--quick: the Release suite only)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
fuzz_seconds=${SAFNET_FUZZ_SECONDS:-15}

echo "== build (Release; CUDA kernels for one architecture, where nvcc is present) and test"
tools/build.sh
ctest --test-dir build --output-on-failure -j "$jobs"
[ "${1:-}" = "--quick" ] && exit 0

echo "== build with ASan+UBSan and test"
# -O1 keeps the sanitized build quick (and the simulator's fiber switches are known to confuse
# the sanitizers' view of the stack at higher optimisation levels).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O1 -DSAFNET_SANITIZE=ON \
  -DSAFNET_CUDA=OFF >/dev/null
cmake --build build-asan -j "$jobs"
# Three whole-run tests take minutes under the sanitizers and only repeat at full scale paths that
# shorter tests check here (training steps and resume: Train.LearnsFashionMnistSubsetWithTanhWeights,
# SignalsCli.*; the simulator's training step: DeviceBackend.ResNet20ForwardAndTrainingStepMatchTheCpu;
# the harness's commands: the CLI tests); the Release pass runs them all. The access-pattern count
# of the GEMMs (AccessPattern.*) measures the layouts, not memory safety: the same kernels run here
# in the conformance suite, and the counting itself in AccessTrace.*.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" \
  -E '^(Train\.InterruptThenResumeIsBitExact|DeviceSim\.TrainingFollowsTheCpuStepForStep|reproduce_tiny|AccessPattern\.ConvGemmsOnResNetShapes)$'

echo "== fuzz every file reader for ${fuzz_seconds}s each"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g" -DCMAKE_C_COMPILER=clang-14 \
  -DCMAKE_CXX_COMPILER=clang++-14 -DSAFNET_FUZZ=ON -DSAFNET_SANITIZE=ON -DSAFNET_CUDA=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target $(cd tests/fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//' | tr '\n' ' ')
for src in tests/fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  corpus=tests/fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null || true
  echo "-- $name"
  (cd build-fuzz && "./tests/$name" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
     -artifact_prefix="$work/crash-" "$work" 2>&1 | tail -n 3) || {
    echo "fuzz target $name failed; crashing inputs in $work"; exit 1; }
  rm -rf "$work"
done
echo "== all tests passed"
