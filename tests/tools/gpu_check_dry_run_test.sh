#!/usr/bin/env bash
# tools/gpu_check.sh --dry-run from a bundle: every step that needs no GPU runs and passes, the
# summary table is written, and the script rejects bad arguments.
# Usage: tests/tools/gpu_check_dry_run_test.sh SOURCE_DIR BUNDLE_DIR
set -euo pipefail
src=${1:?usage: gpu_check_dry_run_test.sh SOURCE_DIR BUNDLE_DIR}
bundle=${2:?usage: gpu_check_dry_run_test.sh SOURCE_DIR BUNDLE_DIR}
fail() { echo "gpu_check_dry_run_test: $*" >&2; exit 1; }
if [ ! -x "$bundle/bin/safnet" ] && [ "${SAFNET_REQUIRE_ALL:-0}" = 0 ]; then
  echo "gpu_check_dry_run_test: no bundle at $bundle (gpu_bundle_build skipped: no CIFAR-10 subset beside the checkout); skipped"
  exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
set +e
"$src/tools/gpu_check.sh" --bogus >/dev/null 2>&1
[ $? = 2 ] || fail "an unknown argument is not an error (exit 2)"
"$src/tools/gpu_check.sh" --dry-run --bundle "$out/none" >/dev/null 2>&1
[ $? = 2 ] || fail "a missing bundle is not an error (exit 2)"
"$src/tools/gpu_check.sh" --dry-run --bundle "$bundle" --out "$out/check"
rc=$?
set -e
[ -f "$out/check/summary.md" ] || fail "no summary.md"
[ $rc = 0 ] || { cat "$out/check/log.txt"; fail "the dry run failed (exit $rc)"; }
grep -q '^0 step(s) failed' "$out/check/summary.md" || fail "summary does not say 0 steps failed"
for step in test_gpu bench "train (cpu)" "campaign (cpu)"; do
  grep -q "^| $step | ok |" "$out/check/summary.md" || fail "step $step did not run ok"
done
ls "$out/check" | sort | tr '\n' ' ' | grep -qx 'bench.md log.txt ncu.txt summary.md ' || fail "unexpected files: $(ls "$out/check")"
# On a machine whose nvidia-smi claims a GPU that is not there, every GPU step fails: the summary
# must count each failed row and the check exit 1 (status runs in a subshell, where a count of its
# own was lost: such a run once said "0 step(s) failed").
mkdir -p "$out/fake"
printf '#!/bin/sh\ncase "$*" in *compute_cap*) echo 9.0 ;; -L) echo "GPU 0: none" ;; *) echo "no such GPU, 9.0" ;; esac\n' \
  >"$out/fake/nvidia-smi"
chmod +x "$out/fake/nvidia-smi"
set +e
PATH="$out/fake:$PATH" SAFNET_GPU_CHECK_SECONDS=120 "$src/tools/gpu_check.sh" --bundle "$bundle" --out "$out/fake-check" \
  >/dev/null 2>&1
rc=$?
set -e
failed_rows=$(grep -c '^| [^|]* | \*\*' "$out/fake-check/summary.md")
[ "$rc" = 1 ] || fail "a check whose GPU steps fail exits $rc (want 1)"
[ "$failed_rows" -gt 0 ] || fail "no failed row without a GPU"
grep -q "^$failed_rows step(s) failed" "$out/fake-check/summary.md" ||
  fail "the summary counts $(grep -o '^[0-9]* step(s) failed' "$out/fake-check/summary.md") for $failed_rows failed rows"
echo "gpu_check_dry_run_test: ok"
