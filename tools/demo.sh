#!/usr/bin/env bash
# The main job on Debian's Fashion-MNIST: train an MLP without and with tanh on its weights (or
# reuse earlier runs), run 100-trial fault campaigns in FP32, FP16 and Q2.5 at BER 1e-6..1e-4, and
# print the paper-style table and write the accuracy-vs-BER plot.
# Usage: tools/demo.sh [OUT_DIR]   (default runs/demo; rerunning resumes and reuses)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/demo}
tools/build.sh --target safnet
mkdir -p "$out"
for saf in none tanh; do
  run="$out/mlp-$saf"
  resume=""
  [ -f "$run/checkpoint.safetensors" ] && resume="--resume"
  build/safnet train --model mlp --saf "$saf" --dataset fashion-mnist --epochs 10 --batch 128 --lr 0.1 \
    --momentum 0.9 --wd 1e-3 --schedule cosine --out "$run" $resume
  build/safnet faults --checkpoint "$run/checkpoint.safetensors" --dtype f32,f16,fixed2.5 \
    --ber 1e-6,1e-5,1e-4 --trials 100 --seed 1 --out "$out/faults-$saf.jsonl"
done
build/safnet report "$out/faults-none.jsonl" "$out/faults-tanh.jsonl" --csv "$out/faults.csv" --svg "$out/faults.svg"
