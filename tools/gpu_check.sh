#!/usr/bin/env bash
# The GPU check: runs from the self-contained bundle (tools/gpu_bundle.sh builds it on a machine
# without a GPU) on a machine with an NVIDIA GPU, CUDA driver, PyTorch with CUDA, Nsight Compute and
# compute-sanitizer, and nothing else of ours; in at most about 8 minutes (each step has a time cap
# and the whole a deadline). Steps:
#   gpu         nvidia-smi's line for the card
#   test_gpu    every kernel against the CPU reference on the GPU, SAFNET_CUDA_SYNC=1 (each launch
#               synchronised and checked, no CUDA graphs)
#   memcheck,   compute-sanitizer on a subset of the kernel tests (conv, linear, batch norm,
#   racecheck   softmax, weight view, flips)
#   bench       bench_gpu: every ResNet-20/ResNet-18 conv shape (fwd, bwd-data, bwd-weight) and the
#               linear layers vs cuDNN (FP32, TF32) and cuBLAS; table in bench.md
#   bench_tf32  the same with ours on tensor cores (--math tf32: every pass), fewer iterations; its
#               table follows in bench.md
#   train       ResNet-20 tanh, 2 epochs on the bundle's 5000 images, GPU vs PyTorch on the same
#               card (tools/torch_reference.py --device cuda): img/s of the 2nd epoch
#   campaign    f32, BER 1e-5: trials/hour of `safnet faults` on the GPU vs tools/torch_campaign.py
#               on the same card (same weights, images, BER); the first 5 trials again on the CPU:
#               same flips per trial, same flipped bits (--replay 1 --list-flips), top-1 close
#   ncu         Nsight Compute (--clock-control none) on the first launch of each of our kernels
#   bench_3xtf32, bench_bf16
#               with what time is left (a minute or more each): the bench in those modes, whose
#               3xtf32 vs fp32 ratio decides the default math mode on a GPU
# Writes under OUT (--out, else $OUT, else runs/gpu-check): summary.md (the table, printed last),
# log.txt (every step's output), bench.md, ncu.txt.
#
# --dry-run: no GPU needed; runs every step that does not need one (the binaries start, test_gpu
# skips cleanly, bench_gpu lists its shapes and rejects bad flags, training and the campaign on the
# CPU and on the simulator (--device sim) with the same comparisons, the PyTorch scripts on the CPU
# where PyTorch is installed) so this script is tested without a GPU (tests/tools/gpu_check_test.sh).
#
# Usage: tools/gpu_check.sh [--dry-run] [--out DIR] [--bundle DIR]
#   --bundle: the bundle folder [the folder this script sits in when it is a bundle's tools/, else
#   gpu-bundle/ beside it]. Environment: SAFNET_PYTHON (a python with torch) [python3, /usr/bin/python3].
set -uo pipefail

dry=0 out= bundle=
while (($#)); do
  case $1 in
    --dry-run) dry=1 ;;
    --out) [ $# -ge 2 ] || { echo "gpu_check: --out needs a folder" >&2; exit 2; }; out=$2; shift ;;
    --bundle) [ $# -ge 2 ] || { echo "gpu_check: --bundle needs a folder" >&2; exit 2; }; bundle=$2; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (--dry-run, --out DIR, --bundle DIR)" >&2; exit 2 ;;
  esac
  shift
done
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$bundle" ]; then
  if [ -x "$here/../bin/safnet" ]; then bundle=$here/..; else bundle=$here/../gpu-bundle; fi
fi
[ -x "$bundle/bin/safnet" ] || { echo "gpu_check: no bundle at $bundle (build one with tools/gpu_bundle.sh)" >&2; exit 2; }
bundle=$(cd "$bundle" && pwd)
out=${out:-${OUT:-runs/gpu-check}}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
bin=$bundle/bin
tools=$bundle/tools
data=$bundle/data/cifar10
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$out/log.txt
: >"$log"
: >"$out/bench.md"
: >"$out/ncu.txt"
start=$(date +%s)
deadline=$((start + ${SAFNET_GPU_CHECK_SECONDS:-470}))
rows=()
failures=0

# run NAME CAP CMD...: runs CMD with a time limit of CAP seconds (less if the deadline is nearer),
# output in $work/NAME.out and appended to log.txt; sets rc and secs.
run() {
  local name=$1 cap=$2
  shift 2
  local left=$((deadline - $(date +%s)))
  local limit=$((cap < left ? cap : left))
  {
    echo
    echo "== $name (limit ${limit}s): $*"
  } >>"$log"
  if ((limit < 5)); then
    echo "(not run: the check's time is spent)" | tee "$work/$name.out" >>"$log"
    rc=124 secs=0
    return
  fi
  local t0
  t0=$(date +%s.%N)
  timeout --kill-after=10 "$limit" "$@" >"$work/$name.out" 2>&1
  rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
  cat "$work/$name.out" >>"$log"
  echo "(exit $rc, ${secs}s)" >>"$log"
}
# row STEP STATUS RESULT SECONDS: a line of the summary; a status other than ok or skipped counts as
# a failure here, in this shell (status runs in a $(...) subshell, where a count would be lost).
row() {
  rows+=("| $1 | $2 | $3 | $4 |")
  case $2 in ok | skipped) ;; *) failures=$((failures + 1)) ;; esac
}
status() { if [ "$1" = ok ] || [ "$1" = skipped ]; then echo "$1"; else echo "**$1**"; fi; }
timed_out() { [ "$rc" = 124 ] || [ "$rc" = 137 ]; }

# A python with PyTorch (on the GPU machine: with CUDA).
py=
for p in ${SAFNET_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c "import torch" 2>/dev/null; then py=$p; break; fi
done

echo "gpu_check: bundle $bundle ($(sed -n 2p "$bundle/MANIFEST" 2>/dev/null)), results in $out$( ((dry)) && echo ', dry run')"

# ---- the card ----------------------------------------------------------------------------------
if ((dry)); then
  gpu="dry run on $(uname -n): no GPU used"
  row gpu skipped "$gpu" 0
else
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no GPU here (nvidia-smi -L fails); tools/gpu_check.sh --dry-run checks the rest" >&2
    exit 1
  fi
  gpu=$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.max.sm,power.limit --format=csv,noheader | head -1)
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
  built=$(grep -o 'sm_[0-9]*[af]*' "$bundle/MANIFEST" | head -1)
  note=
  [ "sm_$cap" = "$built" ] || note=" (bundle built for $built: rebuild with tools/gpu_bundle.sh $cap)"
  echo "nvidia-smi: $gpu" >>"$log"
  row gpu "$(status ok)" "$gpu$note" 0
fi

# ---- kernel tests --------------------------------------------------------------------------------
if ((dry)); then
  run test_gpu 60 "$bin/test_gpu" --gtest_color=no
  skipped=$(grep -c '^\[  SKIPPED \]' "$work/test_gpu.out")
  reason=$(grep -m1 -o 'no CUDA GPU here[^"]*' "$work/test_gpu.out")
  if [ "$rc" = 0 ] && grep -q "SKIPPED" "$work/test_gpu.out"; then s=ok; else s=failed; fi
  row test_gpu "$(status $s)" "runs; GPU tests skip: ${reason:-none skipped}" "$secs"
else
  run test_gpu 90 env SAFNET_CUDA_SYNC=1 "$bin/test_gpu" --gtest_color=no
  passed=$(grep -o '^\[  PASSED  \] [0-9]*' "$work/test_gpu.out" | grep -o '[0-9]*$')
  conf=$(grep '^\[conformance\] [0-9]* cases' "$work/test_gpu.out" | tail -1 | sed 's/^\[conformance\] //')
  if [ "$rc" = 0 ] && ! grep -q '^\[  SKIPPED \]' "$work/test_gpu.out" && [[ $conf == *"on cuda"* ]]; then s=ok; else s=failed; fi
  timed_out && s="timed out"
  row test_gpu "$(status "$s")" "${passed:-0} tests passed, SAFNET_CUDA_SYNC=1; ${conf:-no conformance line}" "$secs"
fi

# ---- compute-sanitizer ---------------------------------------------------------------------------
subset_mem=conv2d,linear,weight_view,batchnorm,softmax_ce
subset_race=conv2d,linear_forward,batchnorm,softmax_ce
for tool in memcheck racecheck; do
  if [ $tool = memcheck ]; then subset=$subset_mem; else subset=$subset_race; fi
  cmd=(compute-sanitizer --tool $tool --error-exitcode 86 --print-limit 20 "$bin/test_gpu" --gtest_color=no
       "--gtest_filter=Conformance.EveryKernelMatchesTheCpuReference:DeviceFlips.*")
  if ((dry)); then
    echo "== $tool (dry run, needs a GPU): SAFNET_CONFORMANCE_CASES=$subset ${cmd[*]}" >>"$log"
    row $tool skipped "needs a GPU: SAFNET_CONFORMANCE_CASES=$subset" 0
  elif ! command -v compute-sanitizer >/dev/null; then
    row $tool "$(status failed)" "compute-sanitizer not on PATH" 0
  else
    run $tool 75 env SAFNET_CONFORMANCE_CASES=$subset "${cmd[@]}"
    summary=$(grep -m1 -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$work/$tool.out")
    cases=$(grep '^\[conformance\] [0-9]* cases' "$work/$tool.out" | tail -1 | sed 's/^\[conformance\] //; s/ on .*,/,/')
    if [ "$rc" = 0 ]; then s=ok; elif timed_out; then s="timed out"; else s=failed; fi
    row $tool "$(status "$s")" "${summary:-no summary line} (${cases:-?} cases: $subset)" "$secs"
  fi
done

# ---- kernels vs cuDNN / cuBLAS -------------------------------------------------------------------
# cuDNN and cuBLAS: bench_gpu dlopens libcudnn.so.9 and libcublas.so.13; PyTorch's wheels bring them.
libdirs=
if [ -n "$py" ]; then
  nv=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia"))' 2>/dev/null)
  [ -d "$nv" ] && libdirs=$(find "$nv" \( -name 'libcudnn.so.9' -o -name 'libcublas.so.13' \) -printf '%h:' 2>/dev/null)
fi
# bench_in MATH NAME CAP [FLAGS...]: bench_gpu with ours in math mode MATH, its table appended to
# bench.md and a summary row: the geometric means of the ratios (library time / ours) per op
# against the FP32 and TF32 libraries, and the worst difference from the FP32 library's result.
bench_in() {
  local math=$1 name=$2 cap=$3
  shift 3
  run $name $cap env LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:-}" "$bin/bench_gpu" --math $math "$@"
  cat "$work/$name.out" >>"$out/bench.md"
  local ratios worst s
  ratios=$(awk -F'|' '/^\| resnet/ {
      for (c = 0; c < 2; ++c) { v = $(9 + 2 * c) + 0; if (v > 0) { k = $4 c; s[k] += log(v); n[k]++ } } }
    END { for (k in s) { op = substr(k, 1, length(k) - 1); gsub(/ /, "", op);
            printf "%s %s %.2f; ", op, (substr(k, length(k)) == "0" ? "FP32" : "TF32"), exp(s[k] / n[k]) } }' \
    "$work/$name.out" | tr ';' '\n' | sort | tr '\n' ' ')
  worst=$(awk -F'|' '/^\| resnet/ { split($12, a, " "); d = a[2] + 0; if (d > m) m = d } END { printf "%.1e", m }' "$work/$name.out")
  if [ "$rc" = 0 ]; then s=ok; elif timed_out; then s="timed out"; else s=failed; fi
  local ended=
  [ "$s" = failed ] && ended="exit $rc: $(grep -m1 . "$work/$name.out"); "
  row $name "$(status "$s")" "${ended}ours in $math; library/ours geomean: ${ratios:-none} max rel. diff vs FP32 library $worst; $(grep -m1 '^cuDNN' "$work/$name.out") (bench.md)" "$secs"
}
if ((dry)); then
  run bench_list 20 "$bin/bench_gpu" --list
  shapes=$(grep -c '^conv\|^linear' "$work/bench_list.out")
  list_rc=$rc
  run bench_badflag 10 "$bin/bench_gpu" --iters 0
  bad_rc=$rc
  run bench_nogpu 20 "$bin/bench_gpu" --models resnet20 --math tf32
  if [ "$list_rc" = 0 ] && [ "$shapes" -gt 0 ] && [ "$bad_rc" = 2 ] && [ "$rc" = 3 ]; then s=ok; else s=failed; fi
  row bench "$(status $s)" "$shapes shapes listed; bad flag exit $bad_rc (want 2); without a GPU exit $rc (want 3): $(head -1 "$work/bench_nogpu.out")" "$secs"
else
  # Ours in fp32 (the reference kernels) then on tensor cores in tf32, PyTorch's default for
  # convolutions: both against the same cuDNN/cuBLAS FP32 and TF32 columns.
  bench_in fp32 bench 150
  bench_in tf32 bench_tf32 90 --iters 10 --warmup 2
fi

# ---- training: ours vs PyTorch on the same device -----------------------------------------------
# The end-of-epoch line of either tool: "epoch E/N ... train loss ... top1 T% ... (R img/s...)".
img_s() { grep -E "^epoch $1/.*train loss" "$2" | tail -1 | grep -oE '[0-9.]+ img/s' | grep -oE '^[0-9.]+'; }
top1() { grep -E "^epoch $1/.*train loss" "$2" | tail -1 | grep -oE 'top1 [0-9.]+%'; }
if ((dry)); then
  dev=cpu limit=(--limit 128) epochs=1 threads=(--threads 2) tdev=cpu
else
  dev=cuda limit=() epochs=2 threads=() tdev=cuda
fi
run train 60 "$bin/safnet" train --model resnet20 --saf tanh --dataset cifar10 --data "$data" \
  --epochs $epochs --batch 128 --device $dev "${limit[@]}" "${threads[@]}" --out "$work/train"
ours_rc=$rc ours_secs=$secs
ours_ips=$(img_s $epochs "$work/train.out") ours_top1=$(top1 $epochs "$work/train.out")
if [ -n "$py" ]; then
  run torch_train 60 "$py" "$tools/torch_reference.py" train --data "$data" --model resnet20 --saf tanh \
    --epochs $epochs --device $tdev "${limit[@]}" "${threads[@]}"
  torch_rc=$rc torch_ips=$(img_s $epochs "$work/torch_train.out") torch_top1=$(top1 $epochs "$work/torch_train.out")
  run torch_badflag 30 "$py" "$tools/torch_reference.py" train --data "$data" --device tpu
  torch_bad=$rc
else
  torch_rc=skipped torch_ips= torch_top1= torch_bad=2
fi
if [ "$ours_rc" = 0 ] && [ -n "$ours_ips" ] && { [ "$torch_rc" = skipped ] || { [ "$torch_rc" = 0 ] && [ -n "$torch_ips" ]; }; } &&
   [ "$torch_bad" = 2 ]; then s=ok; else s=failed; fi
ratio=$(awk -v a="$ours_ips" -v b="$torch_ips" 'BEGIN { if (a > 0 && b > 0) printf " = %.2fx PyTorch", a / b }')
# A side without an epoch line says how it ended instead (exit status, or skipped).
ours_says=${ours_ips:+$ours_ips img/s (${ours_top1:-?})}
torch_says=${torch_ips:+$torch_ips img/s (${torch_top1:-?})}
[ "$torch_rc" = skipped ] && torch_says=${torch_says:-skipped (no PyTorch)}
row "train ($dev)" "$(status $s)" "ResNet-20 tanh, epoch $epochs: ours ${ours_says:-no epoch line (exit $ours_rc)}, PyTorch ${torch_says:-no epoch line (exit $torch_rc)}$ratio" "$ours_secs"

# ---- campaign: trials/hour vs PyTorch; the same trials on the CPU -------------------------------
ckpt=$work/train/checkpoint.safetensors
if ((dry)); then
  trials=2 cmp_dev=sim climit=(--limit 8) tlimit=(--limit 64)
else
  trials=${SAFNET_GPU_CHECK_TRIALS:-200} cmp_dev=cpu climit=() tlimit=()
fi
faults() {  # device trials out [flags]: the command line in fc
  local d=$1 n=$2 o=$3
  shift 3
  fc=("$bin/safnet" faults --checkpoint "$ckpt" --dataset cifar10 --data "$data" --dtype f32 --ber 1e-5 --trials "$n"
      --seed 1 --device "$d" --out "$o" "$@")
}
if [ ! -f "$ckpt" ]; then
  row campaign "$(status failed)" "no checkpoint: training failed" 0
else
  main_dev=$dev
  faults "$main_dev" $trials "$work/main.jsonl" "${climit[@]}" "${threads[@]}"
  run campaign 60 "${fc[@]}"
  main_rc=$rc main_secs=$secs
  if [ -n "$py" ]; then
    run torch_campaign 60 "$py" "$tools/torch_campaign.py" --checkpoint "$ckpt" --data "$data" --ber 1e-5 \
      --trials $trials --device $tdev "${tlimit[@]}"
    torch_c_rc=$rc torch_c_secs=$secs
  else
    torch_c_rc=skipped torch_c_secs=0
  fi
  # The first trials again on the comparison device: the same flips, the same top-1 within bound.
  ncmp=$((dry ? trials : 5))
  faults $cmp_dev $ncmp "$work/cmp.jsonl" "${climit[@]}" "${threads[@]}"
  run campaign_cmp 60 "${fc[@]}"
  cmp_rc=$rc
  faults "$main_dev" 1 "$work/replay-main.jsonl" --replay 1 --list-flips "${climit[@]}" "${threads[@]}"
  run replay_main 30 "${fc[@]}"
  faults $cmp_dev 1 "$work/replay-cmp.jsonl" --replay 1 --list-flips "${climit[@]}" "${threads[@]}"
  run replay_cmp 30 "${fc[@]}"
  flips_main=$(sed -n '/^tensor /,$p' "$work/replay_main.out") flips_cmp=$(sed -n '/^tensor /,$p' "$work/replay_cmp.out")
  nflips=$(($(printf '%s\n' "$flips_main" | wc -l) - 1))
  # Top-1 bound: on the simulator the same kernels run in the same order, so top-1 is equal; on the
  # GPU the kernels sum in other orders and its tanhf differs by a few ulp, which can move only
  # images whose two best logits are within rounding of each other: we allow 0.5% of the test
  # images (5 of 1000), a bound set before any GPU run, and print the largest difference seen.
  if [ $cmp_dev = sim ]; then tol=0; else tol=0.5; fi
  cmp=$(awk -v tol=$tol -v n=$ncmp '
    { t = ""; f = ""; a = ""; match($0, /"trial":-?[0-9]+/); t = substr($0, RSTART + 8, RLENGTH - 8)
      match($0, /"flips":[0-9]+/); f = substr($0, RSTART + 8, RLENGTH - 8)
      match($0, /"top1":[0-9.eE+-]+/); a = substr($0, RSTART + 7, RLENGTH - 7)
      if (t < 0) next
      if (FNR == NR) { F[t] = f; A[t] = a; next }
      if (!(t in F)) next
      seen++; if (F[t] != f) bad_f++; d = A[t] - a; if (d < 0) d = -d; if (d > dmax) dmax = d; if (d > tol) bad_a++ }
    END { printf "%d/%d trials compared, flips differ in %d, top-1 |diff| max %.2f (bound %s) in %d over",
          seen, n, bad_f, dmax, tol, bad_a; exit !(seen == n && bad_f == 0 && bad_a == 0) }' \
    "$work/cmp.jsonl" "$work/main.jsonl" 2>/dev/null)
  cmp_ok=$?
  # Trials done (all, or those finished when the time cap stopped the run: records are written as
  # trials finish), per hour of wall clock.
  ours_done=$(grep -c '"trial":[0-9]' "$work/main.jsonl" 2>/dev/null)
  torch_done=$(grep -c '^trial [0-9]' "$work/torch_campaign.out" 2>/dev/null)
  ours_tph=$(awk -v n="${ours_done:-0}" -v s="$main_secs" 'BEGIN { if (s > 0 && n > 0) printf "%.0f", n / s * 3600 }')
  torch_tph=$(awk -v n="${torch_done:-0}" -v s="$torch_c_secs" 'BEGIN { if (s > 0 && n > 0) printf "%.0f", n / s * 3600 }')
  capped=
  [ "$main_rc" = 124 ] && [ "${ours_done:-0}" -gt 0 ] && main_rc=0 capped=" (time cap: $ours_done done)"
  [ "$torch_c_rc" = 124 ] && [ "${torch_done:-0}" -gt 0 ] && torch_c_rc=0 capped="$capped (PyTorch time cap: $torch_done done)"
  if [ "$main_rc" = 0 ] && [ "$cmp_rc" = 0 ] && [ "$cmp_ok" = 0 ] && [ "$nflips" -gt 0 ] &&
     [ "$flips_main" = "$flips_cmp" ] && { [ "$torch_c_rc" = 0 ] || [ "$torch_c_rc" = skipped ]; }; then s=ok; else s=failed; fi
  same=$([ "$flips_main" = "$flips_cmp" ] && echo "the same $nflips bits" || echo "DIFFERENT bits")
  row "campaign ($main_dev)" "$(status $s)" "f32 BER 1e-5, $trials trials: ours ${ours_tph:-?} trials/h, PyTorch ${torch_tph:-$torch_c_rc} trials/h (wall clock, with start-up)$capped; vs $cmp_dev: $cmp; replay 1 flips $same" "$main_secs"
fi

# ---- Nsight Compute on one launch of each of our kernels -----------------------------------------
metrics=gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active
ncu_cmd=(ncu --clock-control none --kernel-name-base mangled --kernel-id ::regex:.:1 --metrics "$metrics" --csv --print-units base
         "$bin/bench_gpu" --no-baselines --iters 1 --warmup 0 --sets 1)
if ((dry)); then
  echo "== ncu (dry run, needs a GPU): ${ncu_cmd[*]}" >>"$log"
  row ncu skipped "needs a GPU: ${ncu_cmd[*]}" 0
elif ! command -v ncu >/dev/null; then
  row ncu "$(status failed)" "ncu not on PATH" 0
else
  run ncu 90 "${ncu_cmd[@]}"
  # One line per kernel: time, SM and DRAM throughput (% of peak), registers, achieved occupancy.
  awk -F'","' '/^"[0-9]/ { gsub(/^"|"$/, "", $0); k = $5; m = $13; v = $15; gsub(/,/, "", v)
      if (!(k in seen)) { seen[k] = 1; order[++n] = k } val[k, m] = v }
    END { printf "%-10s %6s %6s %5s %6s  %s\n", "us", "SM%", "DRAM%", "regs", "occ%", "kernel"
      for (i = 1; i <= n; ++i) { k = order[i]; name = k; if (length(name) > 90) name = substr(name, 1, 90) "..."
        printf "%-10.1f %6.1f %6.1f %5d %6.1f  %s\n", val[k, "gpu__time_duration.sum"] / 1000,
          val[k, "sm__throughput.avg.pct_of_peak_sustained_elapsed"], val[k, "dram__throughput.avg.pct_of_peak_sustained_elapsed"],
          val[k, "launch__registers_per_thread"], val[k, "sm__warps_active.avg.pct_of_peak_sustained_active"], name } }' \
    "$work/ncu.out" >"$out/ncu.txt"
  nk=$(($(wc -l <"$out/ncu.txt") - 1))
  if [ "$rc" = 0 ] && [ "$nk" -gt 0 ]; then s=ok; elif timed_out; then s="timed out"; else s=failed; fi
  row ncu "$(status "$s")" "$nk kernels profiled (ncu.txt; time unit: the CSV's, ns -> us)" "$secs"
fi

# ---- the other math modes, in the time left ----------------------------------------------------
# 3xtf32 against fp32 decides the default math mode on a GPU (README, "Math modes"); bf16 is the
# fastest. Extra steps: with under a minute left they are skipped, not failed.
if ! ((dry)); then
  for math in 3xtf32 bf16; do
    if ((deadline - $(date +%s) < 60)); then
      row bench_$math skipped "not run: under a minute of the check's time left (bench_gpu --math $math by hand)" 0
    else
      bench_in $math bench_$math 90 --iters 10 --warmup 2
    fi
  done
fi

total=$(($(date +%s) - start))
{
  echo "## gpu_check$( ((dry)) && echo ' --dry-run'): $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "$gpu"
  echo
  echo "bundle: $(tr '\n' ';' <"$bundle/MANIFEST" | sed 's/;$//; s/;/; /g')"
  echo
  echo "| step | status | result | seconds |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "$failures step(s) failed; ${total}s in all. Logs: log.txt; benchmark table: bench.md; Nsight Compute: ncu.txt."
} >"$out/summary.md"
echo
cat "$out/summary.md"
exit $((failures > 0))
