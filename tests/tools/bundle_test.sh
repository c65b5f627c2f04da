#!/usr/bin/env bash
# The GPU bundle (tools/gpu_bundle.sh) is self-contained: ldd resolves nothing for its binaries but
# glibc's own libraries (libc, libm, libdl, libpthread, librt, the loader) and the GCC runtime
# (libstdc++, libgcc_s); a copy of the folder, run with an empty LD_LIBRARY_PATH and a bare
# environment, trains a ResNet-20 step on the CPU from its own data and evaluates it on the CPU and
# on the simulator (--device sim), with the same result; the other binaries start; it is under 48 MiB.
# Usage: tests/tools/bundle_test.sh BUNDLE_DIR
set -euo pipefail
bundle=${1:?usage: bundle_test.sh BUNDLE_DIR}
fail() { echo "bundle_test: $*" >&2; exit 1; }
if [ ! -x "$bundle/bin/safnet" ] && [ "${SAFNET_REQUIRE_ALL:-0}" = 0 ]; then
  echo "bundle_test: no bundle at $bundle (gpu_bundle_build skipped: no CIFAR-10 subset beside the checkout); skipped"
  exit 77
fi
[ -d "$bundle" ] || fail "no bundle at $bundle"
allowed='^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1|/lib64/ld-linux-x86-64\.so\.2|ld-linux-x86-64\.so\.2)$'
for b in safnet test_gpu bench_gpu; do
  f=$bundle/bin/$b
  [ -x "$f" ] || fail "$f missing"
  deps=$(ldd "$f" 2>&1) || fail "ldd $f failed: $deps"
  bad=$(printf '%s\n' "$deps" | awk '{print $1}' | grep -Ev "$allowed" || true)
  [ -z "$bad" ] || fail "$b needs libraries outside glibc and the GCC runtime: $(echo $bad)"$'\n'"$deps"
  echo "bundle_test: $b: $(printf '%s\n' "$deps" | awk '{print $1}' | tr '\n' ' ')"
done
kib=$(du -sk "$bundle" | cut -f1)
((kib <= 48 * 1024)) || fail "$bundle is $((kib / 1024)) MiB, over 48 MiB"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  size=$(stat -c %s "$bundle/data/cifar10/$f.bin") || fail "no $f.bin in the bundle"
  ((size > 0 && size % 3073 == 0)) || fail "$f.bin: $size bytes is not a whole number of CIFAR-10 records"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$bundle" "$tmp/b"
b=$tmp/b
bare() { env -i PATH=/usr/bin:/bin HOME="$tmp" LD_LIBRARY_PATH= "$@"; }
bare "$b/bin/safnet" train --model resnet20 --saf tanh --dataset cifar10 --data "$b/data/cifar10" --limit 32 \
  --batch 32 --epochs 1 --device cpu --threads 2 --quiet --out "$tmp/run" >"$tmp/train.log" 2>&1 ||
  { cat "$tmp/train.log"; fail "the copied bundle's safnet train failed"; }
for dev in cpu sim; do
  bare "$b/bin/safnet" eval --checkpoint "$tmp/run/checkpoint.safetensors" --dataset cifar10 --data "$b/data/cifar10" \
    --limit 8 --batch 8 --threads 2 --device $dev >"$tmp/eval-$dev.log" 2>&1 ||
    { cat "$tmp/eval-$dev.log"; fail "safnet eval --device $dev from the copy failed"; }
  grep '^| f32 |' "$tmp/eval-$dev.log" >"$tmp/f32-$dev" || { cat "$tmp/eval-$dev.log"; fail "no f32 row from eval on $dev"; }
done
cmp -s "$tmp/f32-cpu" "$tmp/f32-sim" || fail "eval on the simulator differs from the CPU: $(cat "$tmp/f32-sim") vs $(cat "$tmp/f32-cpu")"
echo "bundle_test: eval from the copy, cpu and sim: $(cat "$tmp/f32-sim")"
bare "$b/bin/test_gpu" --gtest_list_tests >"$tmp/list" 2>&1 || { cat "$tmp/list"; fail "test_gpu does not start"; }
grep -q EveryKernelMatchesTheCpuReference "$tmp/list" || fail "test_gpu lists no conformance test"
bare "$b/bin/bench_gpu" --list >"$tmp/list" 2>&1 || { cat "$tmp/list"; fail "bench_gpu --list failed"; }
echo "bundle_test: ok ($((kib / 1024)) MiB; test_gpu and bench_gpu start)"
