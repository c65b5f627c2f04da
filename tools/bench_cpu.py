#!/usr/bin/env python3
"""CPU benchmarks of safnet against PyTorch on the same machine, run side by side (alternating
ours / theirs, median of the repeats), printing ratios:

  1. ResNet-20 training throughput (images/s of the training loop, one epoch on --limit images)
  2. evaluation throughput of a faulty model: a fault campaign's trials (images/s) vs PyTorch
     evaluating the same architecture on the same test images
  3. the cost of fault sampling as a fraction of one trial

Usage: tools/bench_cpu.py --data CIFAR_DIR [--limit 2048] [--repeats 3] [--trials 20]
Needs build/safnet, build/tests/bench_flips and /usr/bin/python3 with torch."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAFNET = os.path.join(ROOT, "build", "safnet")
TORCH = ["/usr/bin/python3", os.path.join(ROOT, "tools", "torch_reference.py")]


def run(cmd):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout + out.stderr, time.perf_counter() - t0


def img_per_s(text):
    return float(re.findall(r"\(([\d.]+) img/s[,)]", text)[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--limit", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--trials", type=int, default=20)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="safnet_bench_")
    rows = []

    # 1. training
    ours, theirs = [], []
    for r in range(a.repeats):
        out = os.path.join(work, f"train{r}")
        text, _ = run([SAFNET, "train", "--model", "resnet20", "--saf", "tanh", "--dataset", "cifar10", "--data", a.data,
                       "--limit", str(a.limit), "--epochs", "1", "--quiet", "--out", out])
        ours.append(img_per_s(text))
        text, _ = run(TORCH + ["train", "--data", a.data, "--limit", str(a.limit), "--epochs", "1", "--saf", "tanh"])
        theirs.append(img_per_s(text))
    rows.append(("ResNet-20 training, tanh SAF (img/s)", statistics.median(ours), statistics.median(theirs)))

    # 2. evaluation inside a fault campaign vs plain PyTorch evaluation of the same images
    ckpt = os.path.join(work, "train0", "checkpoint.safetensors")
    ours, theirs, trial_s = [], [], []
    for r in range(a.repeats):
        res = os.path.join(work, f"faults{r}.jsonl")
        _, wall = run([SAFNET, "faults", "--checkpoint", ckpt, "--data", a.data, "--dtype", "f32", "--ber", "1e-5",
                       "--trials", str(a.trials), "--seed", str(r), "--quiet", "--out", res])
        recs = [json.loads(l) for l in open(res) if l.strip()]
        secs = [x["seconds"] for x in recs if x["trial"] >= 0]
        n_img = 1017 if a.limit <= 0 or a.limit >= 1017 else a.limit
        trial_s.append(statistics.median(secs))
        # whole command, start-up and the clean evaluation included: conservative for safnet
        ours.append((len(secs) + 1) * n_img / wall)
        text, _ = run(TORCH + ["eval", "--data", a.data, "--repeat", str(a.trials), "--saf", "tanh"])
        theirs.append(float(re.findall(r"= ([\d.]+) img/s", text)[-1]))
    rows.append(("ResNet-20 faulty-model evaluation (img/s)", statistics.median(ours), statistics.median(theirs)))

    # 3. sampling cost per trial
    text, _ = run([os.path.join(ROOT, "build", "tests", "bench_flips"), "269722", "1e-5", "2000"])
    us = float(re.search(r"f32\s+words \d+ ber [\de.-]+: ([\d.]+) us/trial", text).group(1))
    trial = statistics.median(trial_s)
    print(text.strip())
    print()
    print("| benchmark | safnet | PyTorch | safnet / PyTorch |")
    print("| --- | --- | --- | --- |")
    for name, o, t in rows:
        print(f"| {name} | {o:.0f} | {t:.0f} | {o / t:.2f}x |")
    print(f"| fault sampling per trial (f32, BER 1e-5, 269,722 weights) | {us:.1f} us | | {100 * us * 1e-6 / trial:.4f} % of a {trial:.2f} s trial |")


if __name__ == "__main__":
    sys.exit(main())
