#!/usr/bin/env bash
# On a machine with a GPU and nvcc: builds for this card, runs the whole test suite (the backend
# tests then run on the GPU as well as on the simulator), trains ResNet-20 with tanh for one epoch
# on CIFAR-10 on the GPU and on the CPU, runs a 100-trial campaign on the GPU, and prints a summary.
# Usage: tools/gpu_check.sh [CIFAR_DIR] [OUT_DIR]
#   CIFAR_DIR: CIFAR-10 binary files (default ../shared/data/cifar10-subset)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/cifar10-subset}
out=${2:-runs/gpu-check}
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no GPU here (nvidia-smi -L fails); the simulator tests run in tools/test.sh" >&2
  exit 1
fi
gpu=$(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader | head -1)
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
mkdir -p "$out"
rm -rf "$out/train-gpu" "$out/train-cpu" "$out/faults-gpu.jsonl"

now() { date +%s.%N; }
t0=$(now)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" >"$out/cmake.log"
ninja -C build-gpu | tail -1
t_build=$(echo "$(now) - $t0" | bc)

t0=$(now)
set +e
ctest --test-dir build-gpu -j"$(nproc)" --timeout 1200 >"$out/ctest.log" 2>&1
ctest_rc=$?
set -e
t_tests=$(echo "$(now) - $t0" | bc)
tests_line=$(grep -E "tests passed" "$out/ctest.log" | tail -1)
ran_on_gpu=$(grep -c "device: cuda" "$out/ctest.log" || true)

train() {  # device out
  build-gpu/safnet train --model resnet20 --saf tanh --dataset cifar10 --data "$data" --epochs 1 --batch 128 \
    --lr 0.1 --wd 1e-3 --device "$1" --quiet --out "$2" | tail -1
}
t0=$(now); gpu_train=$(train cuda "$out/train-gpu"); t_gpu=$(echo "$(now) - $t0" | bc)
t0=$(now); cpu_train=$(train cpu "$out/train-cpu"); t_cpu=$(echo "$(now) - $t0" | bc)

t0=$(now)
build-gpu/safnet faults --checkpoint "$out/train-gpu/checkpoint.safetensors" --dataset cifar10 --data "$data" \
  --dtype f32,f16,fixed2.5 --ber 1e-5 --trials 100 --seed 1 --device cuda --quiet --out "$out/faults-gpu.jsonl"
t_faults=$(echo "$(now) - $t0" | bc)
build-gpu/safnet report "$out/faults-gpu.jsonl" --csv "$out/faults-gpu.csv" --svg "$out/faults-gpu.svg" >"$out/report.txt"

cat <<SUMMARY | tee "$out/summary.md"

## gpu_check: $gpu, $(date -u +%Y-%m-%d)

| step | result | seconds |
|---|---|---|
| build (sm_$arch) | ok | $t_build |
| test suite | ${tests_line:-see ctest.log} (exit $ctest_rc; $ran_on_gpu tests report device cuda) | $t_tests |
| ResNet-20 tanh, 1 epoch, GPU | ${gpu_train} | $t_gpu |
| ResNet-20 tanh, 1 epoch, CPU | ${cpu_train} | $t_cpu |
| 3 x 100 trials at BER 1e-5, GPU | $(wc -l <"$out/faults-gpu.jsonl") records | $t_faults |

$(cat "$out/report.txt")
SUMMARY
exit $ctest_rc
