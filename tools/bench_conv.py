#!/usr/bin/env python3
"""Single-threaded conv2d forward on ResNet-20's CIFAR shapes (batch 256): safnet's CPU kernel
(tests/bench/bench_conv, the production conv2d_forward) against PyTorch's
torch.nn.functional.conv2d with torch.set_num_threads(1), measured alternately in one run, shape
by shape, so both see the same machine load. Prints the min over the rounds of each side's min
ms, and the ratio safnet / PyTorch (below 1: safnet is faster). Give --bench twice or more (say a
build before and after a change) to time each binary in the same alternation.

Usage: tools/bench_conv.py [--bench build/tests/bench_conv ...] [--rounds 5] [--repeats 3]
Needs /usr/bin/python3 with torch (run it with that interpreter)."""
import argparse
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (C, H, W, K, stride), 3x3, pad 1, in the order of tests/bench/bench_conv.cpp's table.
SHAPES = [(3, 32, 32, 16, 1), (16, 32, 32, 16, 1), (16, 32, 32, 32, 2), (32, 16, 16, 32, 1), (32, 16, 16, 64, 2),
          (64, 8, 8, 64, 1)]
N = 256


def torch_min_ms(x, w, stride, repeats):
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            F.conv2d(x, w, stride=stride, padding=1)
            best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", action="append", help="bench_conv binary (repeatable)")
    p.add_argument("--rounds", type=int, default=5, help="alternations of safnet and PyTorch per shape")
    p.add_argument("--repeats", type=int, default=3, help="calls per side per round")
    a = p.parse_args()
    benches = a.bench or [os.path.join(ROOT, "build", "tests", "bench_conv")]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    procs = [subprocess.Popen([b, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for b in benches]

    def ours_min_ms(j, shape, repeats):
        procs[j].stdin.write(f"{shape} {repeats}\n")
        procs[j].stdin.flush()
        line = procs[j].stdout.readline()
        if not line:
            sys.exit(f"bench_conv.py: {benches[j]} exited early")
        return float(line)

    rows = []
    for i, (c, h, w, k, stride) in enumerate(SHAPES):
        x = torch.randn(N, c, h, w)
        wt = torch.randn(k, c, 3, 3)
        torch_min_ms(x, wt, stride, 1)  # warm-up: first-call allocation and primitive creation
        ours = [float("inf")] * len(procs)
        for j in range(len(procs)):
            ours_min_ms(j, i, 1)
        theirs = float("inf")
        for _ in range(a.rounds):
            for j in range(len(procs)):
                ours[j] = min(ours[j], ours_min_ms(j, i, a.repeats))
            theirs = min(theirs, torch_min_ms(x, wt, stride, a.repeats))
        rows.append((f"{c}->{k} {h}x{w} s{stride}", ours, theirs))
    for proc in procs:
        proc.stdin.close()
        proc.wait()

    print(f"conv2d forward, N={N}, 3x3 pad 1, one thread; min of {a.rounds} x {a.repeats} calls each")
    for j, b in enumerate(benches):
        print(f"safnet[{j}] = {b}")
    heads = [f"safnet[{j}] ms" for j in range(len(procs))] + ["PyTorch ms"]
    heads += [f"safnet[{j}] / PyTorch" for j in range(len(procs))]
    print("| shape | " + " | ".join(heads) + " |")
    print("|" + " --- |" * (len(heads) + 1))
    total = [[0.0] * len(procs), 0.0]
    for name, ours, theirs in rows:
        cells = [f"{o:.2f}" for o in ours] + [f"{theirs:.2f}"] + [f"{o / theirs:.2f}" for o in ours]
        print(f"| {name} | " + " | ".join(cells) + " |")
        total[0] = [t + o for t, o in zip(total[0], ours)]
        total[1] += theirs
    cells = [f"{o:.2f}" for o in total[0]] + [f"{total[1]:.2f}"] + [f"{o / total[1]:.2f}" for o in total[0]]
    print("| all six | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
