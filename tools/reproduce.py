#!/usr/bin/env python3
"""The paper's protocol end to end, resumable, with its numbers beside ours.

Table I / II: ResNet-20 trained from scratch with each SAF (None, Tanh, Tanh0.5, Softsign, Arctan)
on CIFAR-10 / CIFAR-100 with the paper's recipe, then FP32, FP16 and Q2.5 campaigns at BER 1e-5.
Fig. 3: the BER sweep 1e-7 ... 1e-4 in FP32 for every SAF (CIFAR-10).
Table III / Fig. 4: ResNet-18 fine-tuned into tanh from torchvision weights on an image folder
(where the folder and the exported weights are given).

Every step is a safnet command whose own resume makes the rerun cheap: a finished model is not
trained again, a finished trial is not run again. Writes the page (default docs/REPRODUCTION.md)
with the scale, the machine, the date and the command.

Usage: tools/reproduce.py --cifar10 DIR [--cifar100 DIR] [--imagenet DIR --resnet18 WEIGHTS]
                          [--epochs 200] [--trials 100] [--limit 0] [--out runs/reproduce]
"""
import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import array
import math

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

# (safnet flags, the paper's row name)
SAFS = [("none", [], "None"), ("tanh", [], "Tanh"), ("tanh_c", ["--saf-c", "0.5"], "Tanh0.5"),
        ("softsign", [], "Softsign"), ("arctan", [], "Arctan")]
SAF_NAME = {saf: name for saf, _, name in SAFS}
DTYPES = [("f32", "FP32"), ("f16", "FP16"), ("fixed2.5", "Q2.5")]
SWEEP = [1e-7, 1e-6, 1e-5, 1e-4]

# The paper's Tables I-III: (Top-1, After Top-1 mean, std) by dataset, dtype, SAF.
PAPER = {
    "cifar10": {
        "FP32": {"None": (92.34, 38.61, 37.31), "Tanh": (92.07, 89.25, 7.92), "Tanh0.5": (92.6, 80.68, 16.91),
                 "Softsign": (92.5, 90.64, 3.24), "Arctan": (92.56, 83.45, 13.83)},
        "FP16": {"None": (92.33, 34.67, 35.35), "Tanh": (92.10, 89.99, 4.62), "Tanh0.5": (92.59, 82.02, 15.72),
                 "Softsign": (92.51, 90.13, 4.12), "Arctan": (92.55, 83.71, 15.30)},
        "Q2.5": {"None": (91.08, 60.12, 25.91), "Tanh": (90.47, 85.02, 10.25), "Tanh0.5": (90.67, 81.36, 11.04),
                 "Softsign": (91.21, 89.68, 2.91), "Arctan": (90.38, 85.19, 8.68)},
    },
    "cifar100": {
        "FP32": {"None": (68.77, 19.37, 28.34), "Tanh": (68.65, 66.10, 3.93), "Tanh0.5": (69.44, 56.00, 15.81),
                 "Softsign": (68.55, 65.12, 6.45), "Arctan": (68.62, 60.30, 11.54)},
        "FP16": {"None": (68.73, 19.40, 28.54), "Tanh": (68.66, 66.52, 2.53), "Tanh0.5": (69.46, 56.90, 14.81),
                 "Softsign": (68.49, 65.73, 3.15), "Arctan": (68.61, 62.27, 8.41)},
        "Q2.5": {"None": (65.92, 37.47, 20.68), "Tanh": (65.72, 61.10, 5.08), "Tanh0.5": (66.56, 56.50, 10.12),
                 "Softsign": (66.04, 63.80, 4.02), "Arctan": (66.32, 61.46, 5.00)},
    },
    "imagenet": {
        "FP32": {"None": (69.76, 0.10, 0.00), "Tanh": (70.33, 67.26, 1.01)},
        "FP16": {"None": (69.75, 0.10, 0.01), "Tanh": (70.31, 67.48, 0.81)},
        "Q2.5": {"None": (66.87, 48.04, 5.90), "Tanh": (67.05, 62.58, 1.42)},
    },
}


def fmt_duration(s):
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Steps:
    """Runs the steps in order with a progress line each and an estimate of the time left."""

    def __init__(self, steps, quiet):
        self.steps, self.quiet = steps, quiet
        self.start = time.monotonic()
        self.spent = {}  # kind -> [seconds of steps that did work]

    def run(self):
        for i, (kind, label, cmd, done) in enumerate(self.steps):
            if done():
                self.say(f"[{i + 1}/{len(self.steps)}] {label}: done before, skipped")
                continue
            left = self.estimate(i)
            self.say(f"[{i + 1}/{len(self.steps)}] {label} (elapsed {fmt_duration(time.monotonic() - self.start)}"
                     + (f", about {fmt_duration(left)} left)" if left is not None else ")"))
            t0 = time.monotonic()
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                sys.stderr.write(r.stdout[-4000:])
                sys.exit(f"reproduce: step failed ({r.returncode}): {shlex.join(cmd)}")
            self.spent.setdefault(kind, []).append(time.monotonic() - t0)

    def estimate(self, i):
        total = 0.0
        for kind, _, _, done in self.steps[i:]:
            times = self.spent.get(kind)
            if not times:
                return None
            total += sum(times) / len(times)
        return total

    def say(self, line):
        if not self.quiet:
            print(line, flush=True)


def trained(out_dir, epochs):
    log = os.path.join(out_dir, "train_log.jsonl")
    if not os.path.exists(log):
        return False
    with open(log) as f:
        lines = [l for l in f if l.strip()]
    return bool(lines) and json.loads(lines[-1])["epoch"] >= epochs


def campaign_done(path, expected):
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return sum(1 for l in f if l.strip()) >= expected


def report_rows(safnet, files):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "report.csv")
        subprocess.run([safnet, "report", *files, "--csv", path], stdout=subprocess.DEVNULL, check=True)
        with open(path) as f:
            return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cifar10", help="CIFAR-10 binary folder (data_batch_*.bin, test_batch.bin)")
    ap.add_argument("--cifar100", help="CIFAR-100 binary folder (train.bin, test.bin)")
    ap.add_argument("--imagenet", help="image folder in the ImageNet layout (train/, val/)")
    ap.add_argument("--resnet18", help="torchvision ResNet-18 weights as safetensors (tools/export_torch.py)")
    ap.add_argument("--epochs", type=int, default=200, help="ResNet-20 training epochs (paper: 200)")
    ap.add_argument("--finetune-epochs", type=int, default=5, help="ResNet-18 fine-tuning epochs (paper: 5)")
    ap.add_argument("--trials", type=int, default=100, help="trials per CIFAR cell (paper: 100)")
    ap.add_argument("--sweep-trials", type=int, help="trials per BER of the Fig. 3 sweep [--trials]")
    ap.add_argument("--imagenet-trials", type=int, default=10, help="trials per ImageNet cell (paper: 10)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images of each split (0 = all)")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "reproduce"), help="runs folder")
    ap.add_argument("--md", default=os.path.join(ROOT, "docs", "REPRODUCTION.md"), help="the page written")
    ap.add_argument("--safnet", default=os.path.join(ROOT, "build", "safnet"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", default="0")
    ap.add_argument("--seed", default="1", help="campaign seed")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    a.sweep_trials = a.sweep_trials or a.trials
    if not (a.cifar10 or a.cifar100 or a.imagenet):
        ap.error("give at least one data set (--cifar10, --cifar100 or --imagenet)")
    if not os.access(a.safnet, os.X_OK):
        sys.exit(f"reproduce: {a.safnet} not found; build it first (tools/build.sh --target safnet)")
    for flag in ("cifar10", "cifar100", "imagenet", "resnet18"):
        path = getattr(a, flag)
        if path and not os.path.exists(path):
            sys.exit(f"reproduce: --{flag} {path}: no such file or folder")

    common = ["--device", a.device, "--threads", a.threads, "--limit", str(a.limit)]
    steps, cells, missing = [], [], []
    cifars = [(ds, d) for ds, d in (("cifar10", a.cifar10), ("cifar100", a.cifar100)) if d]
    # Every model first, then Table I's campaigns, then the sweeps: a run cut short has whole tables.
    trains, tables, sweeps = [], [], []
    models = []  # CIFAR-10: (saf, checkpoint, its Table I campaign command)
    for ds, data in cifars:
        for saf, extra, _ in SAFS:
            run = os.path.join(a.out, ds, saf)
            ck = os.path.join(run, "checkpoint.safetensors")
            resume = ["--resume"] if os.path.exists(ck) else []
            trains.append(("train", f"train ResNet-20 {ds} {saf}",
                           [a.safnet, "train", "--model", "resnet20", "--saf", saf, *extra, "--dataset", ds, "--data", data,
                            "--epochs", str(a.epochs), "--out", run, "--quiet", *common, *resume],
                           lambda run=run: trained(run, a.epochs)))
            table = os.path.join(a.out, ds, f"faults-{saf}.jsonl")
            n = len(DTYPES) * (a.trials + 1)
            tables.append(("faults", f"faults {ds} {saf} at BER 1e-5 ({a.trials} trials x {len(DTYPES)} dtypes)",
                           [a.safnet, "faults", "--checkpoint", ck, "--data", data, "--dtype",
                            ",".join(d for d, _ in DTYPES), "--ber", "1e-5", "--trials", str(a.trials), "--seed", a.seed,
                            "--out", table, "--quiet", *common],
                           lambda p=table, n=n: campaign_done(p, n)))
            cells.append((ds, table))
            if ds == "cifar10":
                models.append((saf, ck, tables[-1][2]))
                sweep = os.path.join(a.out, ds, f"sweep-{saf}.jsonl")
                n = len(SWEEP) * (a.sweep_trials + 1)
                sweeps.append(("faults", f"faults {ds} {saf} FP32 sweep 1e-7..1e-4 ({a.sweep_trials} trials per BER)",
                               [a.safnet, "faults", "--checkpoint", ck, "--data", data, "--dtype", "f32", "--ber",
                                ",".join(f"{b:g}" for b in SWEEP), "--trials", str(a.sweep_trials), "--seed", a.seed,
                                "--out", sweep, "--quiet", *common],
                               lambda p=sweep, n=n: campaign_done(p, n)))
    steps += trains + tables + sweeps
    if not a.cifar10:
        missing.append("CIFAR-10 (--cifar10): Table I and Fig. 3 not run")
    if not a.cifar100:
        missing.append("CIFAR-100 (--cifar100): Table II not run")
    if a.imagenet and a.resnet18:
        base = os.path.join(a.out, "imagenet")
        none_ck, tanh_run = os.path.join(base, "none.safetensors"), os.path.join(base, "tanh")
        steps.append(("import", "import torchvision ResNet-18",
                      [a.safnet, "import", "--model", "resnet18", "--weights", a.resnet18, "--dataset", "imagefolder", "--out", none_ck],
                      lambda: os.path.exists(none_ck)))
        resume = ["--resume"] if os.path.exists(os.path.join(tanh_run, "checkpoint.safetensors")) else []
        steps.append(("train", "fine-tune ResNet-18 into tanh",
                      [a.safnet, "train", "--model", "resnet18", "--saf", "tanh", "--init", none_ck, "--recipe",
                       "imagenet-finetune", "--epochs", str(a.finetune_epochs), "--dataset", "imagefolder", "--data",
                       a.imagenet, "--out", tanh_run, "--quiet", *common, *resume],
                      lambda: trained(tanh_run, a.finetune_epochs)))
        for name, ck in (("none", none_ck), ("tanh", os.path.join(tanh_run, "checkpoint.safetensors"))):
            path = os.path.join(base, f"faults-{name}.jsonl")
            n = len(DTYPES) * (len(SWEEP)) * (a.imagenet_trials + 1)
            steps.append(("faults", f"faults ResNet-18 {name} (Table III and Fig. 4)",
                          [a.safnet, "faults", "--checkpoint", ck, "--dataset", "imagefolder", "--data", a.imagenet,
                           "--dtype", ",".join(d for d, _ in DTYPES), "--ber", ",".join(f"{b:g}" for b in SWEEP),
                           "--trials", str(a.imagenet_trials), "--seed", a.seed, "--out", path, "--quiet", *common],
                          lambda p=path, n=n: campaign_done(p, n)))
            cells.append(("imagenet", path))
    else:
        missing.append("ImageNet (--imagenet DIR and --resnet18 WEIGHTS from tools/export_torch.py): Table III and "
                       "Fig. 4 not run")

    Steps(steps, a.quiet).run()
    write_page(a, cells, missing, models)


# The read weight tau(raw) of each SAF, and the largest value it can take (a flipped exponent bit
# drives the raw weight towards it).
TAU = {"none": (lambda w: w, math.inf), "tanh": (math.tanh, 1.0), "tanh_c": (lambda w: math.tanh(0.5 * w), 1.0),
       "softsign": (lambda w: w / (1 + abs(w)), 1.0), "arctan": (math.atan, math.pi / 2)}


def quantile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def weight_section(models):
    """Raw and read weights of each trained model: how far a flip can push a read weight."""
    import torch_campaign
    lines = ["## Raw weights after training (CIFAR-10 models)", "",
             "Conv and linear weights (the fault targets). A flip that sets a high exponent bit drives a raw "
             "weight far out; the SAF then reads it as its bound (1 for Tanh, Tanh0.5 and Softsign, pi/2 for "
             "Arctan), the damage is that bound against the weights' typical size (last column); without a "
             "SAF nothing bounds it.", "",
             "| SAF | weights | median abs(raw) | max abs(raw) | median abs(tau(raw)) | 99th pct abs(tau(raw)) | "
             "bound / median |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for saf, ck, _ in models:
        if not os.path.exists(ck):
            continue
        w = array.array("f")
        for name, (dt, shape, b) in torch_campaign.read_safetensors(ck).items():
            if name.endswith(".weight") and dt == "F32" and len(shape) in (2, 4):
                w.frombytes(b)  # little-endian f32, as safetensors stores it (and x86 reads it)
        tau, bound = TAU[saf]
        raw = sorted(abs(v) for v in w)
        read = sorted(abs(tau(v)) for v in w)
        med = quantile(read, 0.5)
        lines.append(f"| {SAF_NAME[saf]} | {len(w):,} | {quantile(raw, 0.5):.4f} | {raw[-1]:.3f} | {med:.4f} | "
                     f"{quantile(read, 0.99):.4f} | {'unbounded' if bound == math.inf else f'{bound / med:.0f}x'} |")
    return lines + [""]


def per_layer_section(models):
    """The Table I FP32 campaigns' accuracy loss per target tensor (safnet faults --per-layer, which
    reruns no trial), the five tensors whose hits cost the most."""
    lines = ["## Which layers' flips do the damage (CIFAR-10, FP32, BER 1e-5)", "",
             "The top-1 drop of each campaign fitted on which tensors each trial hit (`safnet faults ... --per-layer`): "
             "the five tensors with the largest points lost when hit. Large tensors are hit in every trial, so "
             "their column 'otherwise' is empty and the fit cannot separate them.", ""]
    for saf, ck, cmd in models:
        out = cmd[cmd.index("--out") + 1]
        if not os.path.exists(out):
            continue
        run = [*cmd[:cmd.index("--dtype") + 1], "f32", *cmd[cmd.index("--dtype") + 2:], "--per-layer"]
        r = subprocess.run(run, capture_output=True, text=True)
        rows = [l for l in r.stdout.splitlines() if l.startswith("| ") and not l.startswith("| tensor")
                and not l.startswith("| ---")]
        if r.returncode or not rows:
            lines += [f"{SAF_NAME[saf]}: per-layer attribution failed: {r.stderr.strip()[-300:]}", ""]
            continue

        def lost(row):
            v = row.strip("| ").split(" | ")[-1]
            return float(v) if v not in ("–", "-", "") else float("-inf")
        head = [l for l in r.stdout.splitlines() if l.startswith("| tensor") or l.startswith("| ---")]
        lines += [f"**{SAF_NAME[saf]}**", "", *head, *sorted(rows, key=lost, reverse=True)[:5], ""]
    return lines


def write_page(a, cells, missing, models):
    figs = []
    lines = ["# Reproduction of the paper's tables", "",
             f"Generated by `tools/reproduce.py` on {datetime.date.today().isoformat()} "
             f"({platform.machine()}, {cpu_name()}, {os.cpu_count()} cores).", "",
             "```", shlex.join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]), "```", "",
             f"Scale: ResNet-20 trained {a.epochs} epochs (paper: 200), {a.trials} trials per CIFAR cell (paper: 100), "
             f"{a.sweep_trials} per BER of the Fig. 3 sweep, "
             + (f"the first {a.limit} images of each split" if a.limit else "every image of each split")
             + ". Campaigns at BER 1e-5, weights stored in FP32, FP16 and Q2.5, every conv and linear weight "
               "fault-prone, top-1 counted as PyTorch counts it (a NaN logit ranks above every number).", ""]
    for m in missing:
        lines.append(f"- Missing: {m}.")
    if missing:
        lines.append("")
    by_ds = {}
    for ds, path in cells:
        if os.path.exists(path):
            by_ds.setdefault(ds, []).append(path)
    names = {"cifar10": "Table I: ResNet-20, CIFAR-10", "cifar100": "Table II: ResNet-20, CIFAR-100",
             "imagenet": "Table III: ResNet-18, ImageNet layout"}
    saf_name = {"none": "None", "tanh": "Tanh", "tanh_c0.5": "Tanh0.5", "softsign": "Softsign", "arctan": "Arctan"}
    for ds, files in by_ds.items():
        rows = [r for r in report_rows(a.safnet, files) if float(r["ber"]) == 1e-5]
        lines += [f"## {names[ds]}", "",
                  "| Datatype | SAF | Paper Top-1 | Paper After Top-1 | Top-1 | After Top-1 (mean ± std) | 95% CI | "
                  "trials | mean flips | non-finite logits |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for dt, dname in DTYPES:
            for r in rows:
                if r["dtype"] != dt:
                    continue
                saf = saf_name.get(r["saf"], r["saf"])
                p = PAPER.get(ds, {}).get(dname, {}).get(saf)
                paper = (f"{p[0]:.2f} | {p[1]:.2f} ± {p[2]:.2f}" if p else "– | –")
                lines.append(f"| {dname} | {saf} | {paper} | {float(r['clean_top1']):.2f} | "
                             f"{float(r['top1_mean']):.2f} ± {float(r['top1_std_pop']):.2f} | "
                             f"[{float(r['top1_ci95_lo']):.2f}, {float(r['top1_ci95_hi']):.2f}] | {r['trials']} | "
                             f"{float(r['flips_mean']):.1f} | {nonfinite(r)} |")
        lines.append("")
    if models:
        lines += weight_section(models) + per_layer_section(models)
    sweeps = sorted(os.path.join(a.out, "cifar10", f) for f in os.listdir(os.path.join(a.out, "cifar10"))
                    if f.startswith("sweep-") and f.endswith(".jsonl")) if os.path.isdir(os.path.join(a.out, "cifar10")) else []
    os.makedirs(os.path.dirname(os.path.abspath(a.md)), exist_ok=True)
    if sweeps:
        svg = os.path.join(os.path.dirname(a.md), "reproduction-fig3.svg")
        subprocess.run([a.safnet, "report", *sweeps, "--svg", svg], stdout=subprocess.DEVNULL, check=True)
        figs.append(svg)
        lines += ["## Fig. 3: ResNet-20 on CIFAR-10 across BER (FP32)", "",
                  f"![accuracy vs BER]({os.path.relpath(svg, os.path.dirname(a.md))})", ""]
    lines += kept_analysis(a.md)
    with open(a.md + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(a.md + ".tmp", a.md)
    if not a.quiet:
        print(f"wrote {a.md}" + "".join(f" and {s}" for s in figs))


ANALYSIS_BEGIN, ANALYSIS_END = "<!-- analysis: kept when the page is regenerated -->", "<!-- /analysis -->"


def kept_analysis(md):
    """The reader's analysis of the numbers, written by hand between the markers in the page, so
    that a rerun which refreshes the tables does not lose it; the empty markers on a new page."""
    old = open(md).read() if os.path.exists(md) else ""
    begin, end = old.find(ANALYSIS_BEGIN), old.find(ANALYSIS_END)
    if 0 <= begin < end:
        return [old[begin:end + len(ANALYSIS_END)], ""]
    return [ANALYSIS_BEGIN, ANALYSIS_END, ""]


def nonfinite(row):
    """Mean images per trial whose logits held a NaN or infinity (counted as PyTorch ranks them)."""
    v = row.get("nonfinite_logits_mean", "")
    return f"{float(v):.1f}" if v not in ("", "nan") else "n/a"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
