#!/usr/bin/env python3
"""safnet against the fault-injection tools researchers use, side by side: MRFI (PyPI mrfi 2.1.0) and
PyTorchFI (PyPI pytorchfi 0.6.0), each with its own weight bit-flip injection, on the same ResNet
weights (a safnet CIFAR ResNet checkpoint), the same test images, the same cores and the same number
of trials, whole processes alternating round by round.

  tools/bench_peers.py --checkpoint CKPT --data DIR [--model resnet20] [--saf tanh] [--ber 1e-5]
                       [--trials 40] [--rounds 3] [--threads 2] [--limit 0] [--venv DIR] [--safnet PATH]

The peers are installed on demand into a private virtual environment (--venv, default
build/peers-venv; never a dependency of safnet) on top of Debian's python3-torch, with --no-deps
(MRFI needs scipy besides, pinned to a release built for Debian's numpy).

How each tool injects i.i.d. per-bit faults at BER b into the f32 conv and linear weights (the raw
weights; the SAF is applied as they are read):
  safnet     `safnet faults --dtype f32 --ber b`: each stored bit flips with probability b.
  MRFI       RandomPositionByRate(rate = 32 b, Poisson count) + FloatRandomBitFlip (one random bit of
             each chosen value), on the modules named explicitly (module_type matches class names by
             substring and would skip the SAF's Conv2d subclass); MRFI re-draws weight faults on every
             forward call, so the draw is enabled for the first batch of a trial only: one fault map
             per trial.
  PyTorchFI  no BER mode for weights: the sites are sampled here as safnet does (a binomial count per
             tensor, distinct bit positions), and declare_weight_fi flips them with a custom function.
Prints each tool's wall time per round, trials/hour (from the median round) and the ratios, and each
tool's mean top-1 with its 95 % CI over all rounds' trials, which must agree within sampling error."""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = ["mrfi==2.1.0", "pytorchfi==0.6.0", "scipy==1.11.4"]


def ensure_venv(path):
    """The private environment with the peers; created on first use."""
    py = os.path.join(path, "bin", "python")
    probe = [py, "-c", "import mrfi, pytorchfi, torch"]
    if os.path.exists(py) and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"bench_peers: installing {' '.join(PEERS)} into {path} (private to this benchmark)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", path], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", *PEERS], check=True)
    r = subprocess.run(probe, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"bench_peers: the peers do not import in {path}:\n{r.stderr}")
    return py


# --- the peers' side: runs inside the private environment -------------------------------------------

def load_model(a):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import torch_campaign
    import torch_reference as ref
    torch.set_num_threads(a.threads)
    model = torch_campaign.load_resnet(a.checkpoint, a.model, a.saf, "bench_peers")
    model.eval()
    x, y = ref.read_cifar([os.path.join(a.data, "test_batch.bin")], a.limit)
    return model, x, y


def top1(model, x, y, batch, first_batch_done=None):
    """Top-1 in percent, argmax as PyTorch ranks (a NaN logit above every number)."""
    import torch
    correct = 0
    with torch.no_grad():
        for s in range(0, len(y), batch):
            correct += (model(x[s:s + batch]).argmax(1) == y[s:s + batch]).sum().item()
            if s == 0 and first_batch_done:
                first_batch_done()
    return 100.0 * correct / len(y)


def run_mrfi(a):
    import logging
    import torch
    from mrfi import MRFI, EasyConfig
    logging.getLogger().setLevel(logging.ERROR)
    model, x, y = load_model(a)
    names = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    cfg = EasyConfig({"faultinject": [{
        "type": "weight", "name": "weight", "module_fullname": names,
        "selector": {"method": "RandomPositionByRate", "rate": 32 * a.ber, "poisson": True},
        "error_mode": {"method": "FloatRandomBitFlip"}}], "observe": []})
    fi = MRFI(model, cfg)
    draw = fi.get_weights_configs()
    if len(draw) != len(names):
        sys.exit(f"bench_peers: MRFI configured {len(draw)} of {len(names)} weight tensors")
    torch.manual_seed(a.seed)
    tops = []
    for _ in range(a.trials):
        draw.enabled = True  # restores the clean copy and draws this trial's faults at the next forward

        def freeze():
            draw.enabled = False  # later batches keep this trial's faulty weights
        tops.append(top1(fi, x, y, a.batch, freeze))
    return tops


def run_pytorchfi(a):
    import logging
    import struct
    import torch
    # PyTorchFI's constructor calls logging.basicConfig with a format that breaks later records;
    # configuring logging first makes that call a no-op.
    logging.basicConfig(level=logging.ERROR)
    from pytorchfi.core import fault_injection
    model, x, y = load_model(a)
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    fi = fault_injection(model, a.batch, input_shape=list(x.shape[1:]),
                         layer_types=[torch.nn.Conv2d, torch.nn.Linear], use_cuda=False)
    gen = torch.Generator().manual_seed(a.seed)
    tops = []
    for _ in range(a.trials):
        layer_num, k, c, kh, kw, bits = [], [], [], [], [], []
        for li, m in enumerate(layers):
            w = m.weight
            nbits = 32 * w.numel()
            count = int(torch.binomial(torch.tensor(float(nbits)), torch.tensor(a.ber), generator=gen).item())
            if count == 0:
                continue
            pos = torch.randperm(nbits, generator=gen)[:count] if count * 4 > nbits else \
                torch.unique(torch.randint(0, nbits, (2 * count,), generator=gen))[:count]
            for p in pos.tolist():
                idx = unravel(p // 32, w.shape) + [None] * (4 - w.dim())
                layer_num.append(li), k.append(idx[0]), c.append(idx[1]), kh.append(idx[2]), kw.append(idx[3])
                bits.append(p % 32)
        order = iter(bits)  # declare_weight_fi visits the sites in the order given, layer by layer

        def flip(weight, index):
            (word,) = struct.unpack("<I", struct.pack("<f", float(weight[index])))
            return struct.unpack("<f", struct.pack("<I", word ^ (1 << next(order))))[0]
        faulty = fi.declare_weight_fi(function=flip, layer_num=layer_num, k=k, dim1=c, dim2=kh, dim3=kw) \
            if layer_num else model
        tops.append(top1(faulty, x, y, a.batch))
    return tops


def unravel(i, shape):
    out = []
    for d in reversed(shape):
        out.append(i % d)
        i //= d
    return list(reversed(out))


# --- the driver ---------------------------------------------------------------------------------------

def run_safnet(a, seed, workdir):
    out = os.path.join(workdir, f"safnet-{seed}.jsonl")
    if os.path.exists(out):
        os.remove(out)  # a fresh file: the same command on an old one would resume, not run
    cmd = [a.safnet, "faults", "--checkpoint", a.checkpoint, "--data", a.data, "--dtype", "f32", "--ber",
           f"{a.ber:g}", "--trials", str(a.trials), "--seed", str(seed), "--threads", str(a.threads),
           "--batch", str(a.batch), "--limit", str(a.limit), "--out", out, "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    with open(out) as f:
        tops = [r["top1"] for r in map(json.loads, f) if r["trial"] >= 0]
    return dt, tops, cmd


def run_peer(a, py, tool, seed):
    cmd = [py, os.path.abspath(__file__), "--run", tool, "--checkpoint", a.checkpoint, "--data", a.data,
           "--model", a.model, "--saf", a.saf, "--ber", repr(a.ber), "--trials", str(a.trials), "--seed", str(seed),
           "--threads", str(a.threads), "--batch", str(a.batch), "--limit", str(a.limit)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(a.threads)})
    dt = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"bench_peers: {tool} failed:\n{r.stderr[-3000:]}")
    return dt, json.loads(r.stdout.strip().splitlines()[-1])["top1"], cmd


def mean_ci(xs):
    m = statistics.fmean(xs)
    half = 1.96 * statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("inf")
    return m, half


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a safnet CIFAR ResNet checkpoint (f32 safetensors)")
    p.add_argument("--data", required=True, help="CIFAR-10 binary folder (test_batch.bin)")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--saf", default="tanh", help="the checkpoint's SAF (none, tanh, softsign, arctan)")
    p.add_argument("--ber", type=float, default=1e-5)
    p.add_argument("--trials", type=int, default=40, help="trials per tool per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--limit", type=int, default=0, help="the first N test images (0 = all)")
    p.add_argument("--venv", default=os.path.join(ROOT, "build", "peers-venv"))
    p.add_argument("--safnet", default=os.path.join(ROOT, "build", "safnet"))
    p.add_argument("--run", choices=["mrfi", "pytorchfi"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if not (0 < a.ber < 1):
        p.error(f"--ber {a.ber}: a probability in (0, 1)")
    if a.trials < 2 or a.rounds < 1:
        p.error("--trials must be >= 2 and --rounds >= 1")
    if not a.model.startswith("resnet") or not a.model[6:].isdigit() or (int(a.model[6:]) - 2) % 6:
        p.error(f"--model {a.model}: a CIFAR ResNet (resnet20, resnet32, ...)")
    for path, what in ((a.checkpoint, "--checkpoint"), (os.path.join(a.data, "test_batch.bin"), "--data")):
        if not os.path.exists(path):
            p.error(f"{what}: {path} does not exist")
    if a.run:  # one peer's trials, inside the private environment; the last stdout line is JSON
        tops = run_mrfi(a) if a.run == "mrfi" else run_pytorchfi(a)
        print(json.dumps({"top1": tops}))
        return
    if not os.access(a.safnet, os.X_OK):
        sys.exit(f"bench_peers: {a.safnet} not found; build it first (tools/build.sh --target safnet)")

    py = ensure_venv(a.venv)
    tools = ["safnet", "mrfi", "pytorchfi"]
    times = {t: [] for t in tools}
    tops = {t: [] for t in tools}
    cmds = {}
    workdir = tempfile.mkdtemp(prefix="bench_peers.")
    try:
        for r in range(a.rounds):
            seed = a.seed + r
            # Rotate who goes first, so no tool always runs on a cooler (or warmer) machine.
            for tool in tools[r % 3:] + tools[:r % 3]:
                if tool == "safnet":
                    dt, t, cmds[tool] = run_safnet(a, seed, workdir)
                else:
                    dt, t, cmds[tool] = run_peer(a, py, tool, seed)
                if len(t) != a.trials:
                    sys.exit(f"bench_peers: {tool} ran {len(t)} trials, expected {a.trials}")
                times[tool].append(dt)
                tops[tool].extend(t)
                print(f"round {r + 1}/{a.rounds} {tool:9s} {a.trials} trials in {dt:7.2f} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{a.model} {a.saf}, f32 weights at BER {a.ber:g}, {a.trials} trials x {a.rounds} rounds per tool, "
          f"{a.threads} threads, test images: {f'the first {a.limit}' if a.limit else 'all of test_batch.bin'}")
    print("| tool | wall s per round (min / median / max) | trials/hour | safnet's speed-up | top-1 mean ± 95% CI |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rate = {t: a.trials / statistics.median(times[t]) * 3600 for t in tools}
    for t in tools:
        m, h = mean_ci(tops[t])
        ts = times[t]
        print(f"| {t} | {min(ts):.2f} / {statistics.median(ts):.2f} / {max(ts):.2f} | {rate[t]:.0f} | "
              f"{rate['safnet'] / rate[t]:.2f}x | {m:.2f} ± {h:.2f} |")
    ms, hs = mean_ci(tops["safnet"])
    for t in ("mrfi", "pytorchfi"):
        m, h = mean_ci(tops[t])
        z = abs(ms - m) / math.sqrt((hs / 1.96) ** 2 + (h / 1.96) ** 2) if hs + h > 0 else 0.0
        verdict = "agree within sampling error" if z <= 1.96 else "DIFFER beyond sampling error"
        print(f"top-1 safnet vs {t}: {ms:.2f} vs {m:.2f} (|z| = {z:.2f}): {verdict}")
    best = max(("mrfi", "pytorchfi"), key=lambda t: rate[t])
    print(f"safnet: {rate['safnet'] / rate[best]:.2f}x the faster peer ({best})")


if __name__ == "__main__":
    main()
