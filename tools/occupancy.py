#!/usr/bin/env python3
"""Resident blocks per SM and waves on a 132-SM card for every GEMM launch of a training step, per math mode.

Joins the launches printed by `test_sim --gtest_filter=LaunchGeometry.GemmLaunchesPerMathMode`
(tile, threads and blocks each launch_gemm call picks) with the registers and static shared memory
ptxas gave the kernel it runs (`cuobjdump -res-usage` of the sm_90 objects), and prints per network
a markdown table: blocks, blocks resident per SM with the limit that binds, and waves =
blocks / (blocks per SM x 132). Forward rows use the plain conv kernel (ConvForward<false>); when
batch norm follows, evaluation runs the fused one (ConvForward<true>), listed in the kernel table.
Weight gradients with parts > 1 run the SplitKPartials kernel, then splitk_reduce_kernel, whose
blocks the launch geometry tables of docs/BENCHMARKS.md count.

Limits per SM, compute capability 9.0 (H100, H200), from the CUDA C++ Programming Guide, "Technical
Specifications per Compute Capability": 2048 resident threads, 32 resident blocks, 64K 32-bit
registers, at most 255 registers per thread, 228 KiB shared memory per SM and 227 KiB per block;
the Hopper Tuning Guide adds that the driver reserves 1 KiB of shared memory per block. Allocation
follows cuda_occupancy.h: registers per warp in units of 256 (a thread's count rounded up to 8),
from 4 sub-partitions of 16K registers that each hold whole warps; shared memory per block
(static + 1 KiB) in units of 128 bytes. The shared memory count assumes the driver picks the
largest carveout (228 KiB), as it does by default when shared memory limits residency.

  tools/occupancy.py                      # runs build/tests/test_sim, reads the objects under build/
  tools/occupancy.py --launches gemm.txt  # the test's output saved (or - for stdin)
  tools/occupancy.py --self-test          # the blocks-per-SM arithmetic on hand-computed cases

cuobjdump comes from --cuobjdump, $CUOBJDUMP, PATH, /usr/local/cuda/bin or the pip install below, which
serves where no CUDA toolkit has one:
  pip install --target /tmp/nvtools nvidia-cuda-cuobjdump   # then /tmp/nvtools/nvidia/cu13/bin/cuobjdump
"""
import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap

SMS = 132
WARP = 32
THREADS_PER_SM = 2048
BLOCKS_PER_SM = 32
REGS_PER_SM = 64 * 1024
REG_SUBPARTITIONS = 4
REG_UNIT_PER_WARP = 256
MAX_REGS_PER_THREAD = 255
SMEM_PER_SM = 228 * 1024
SMEM_PER_BLOCK = 227 * 1024
SMEM_RESERVED_PER_BLOCK = 1024
SMEM_UNIT = 128

MODES = ("fp32", "3xtf32", "tf32", "bf16")  # MathMode 0..3, cuda/math_mode.h
TC_MODES = MODES[1:]
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OBJECTS = [os.path.join("build/CMakeFiles/safnet_cuda_gpu.dir/cuda/kernels", f) for f in ("conv2d.cu.o", "linear.cu.o")]
TEST = "build/tests/test_sim"
TEST_FILTER = "LaunchGeometry.GemmLaunchesPerMathMode"
FALLBACK_CUOBJDUMP = ("/usr/local/cuda/bin/cuobjdump", "/tmp/nvtools/nvidia/cu13/bin/cuobjdump")


def round_up(x, unit):
    return -(-x // unit) * unit


def blocks_per_sm(threads, regs, smem):
    """(blocks, binding limit) for blocks of `threads` threads, `regs` registers per thread and
    `smem` bytes of static shared memory. Ties name every limit that binds, e.g. "threads=regs"."""
    warps = -(-threads // WARP)
    if regs > MAX_REGS_PER_THREAD or smem > SMEM_PER_BLOCK:  # 227 KiB is what a kernel may ask for
        return 0, "does not fit"
    regs_per_warp = round_up(max(regs, 1) * WARP, REG_UNIT_PER_WARP)
    warps_by_regs = (REGS_PER_SM // REG_SUBPARTITIONS // regs_per_warp) * REG_SUBPARTITIONS
    smem_per_block = round_up(smem + SMEM_RESERVED_PER_BLOCK, SMEM_UNIT)
    limits = {
        "blocks": BLOCKS_PER_SM,
        "threads": THREADS_PER_SM // WARP // warps,
        "regs": warps_by_regs // warps,
        "smem": SMEM_PER_SM // smem_per_block,
    }
    n = min(limits.values())
    return n, "=".join(k for k, v in limits.items() if v == n)


def waves(blocks, per_sm):
    return blocks / (per_sm * SMS) if per_sm else math.inf


# --- kernels: demangled names from cuobjdump -res-usage ---------------------------------------

FUNCTION = re.compile(r"^\s*Function (\S+):\s*$")
RESOURCES = re.compile(r"REG:(\d+).*?SHARED:(\d+)")
TC_KERNEL = re.compile(r"tc_gemm_kernel<(?:\S+::)?TcTile<(\d+), (\d+), (\d+), (\d+)>, \(safnet::MathMode\)(\d), (.*)>\(")
TILED_KERNEL = re.compile(r"tiled_gemm_kernel<(\d+), (\d+), (\d+), (\d+), (\d+), (.*)>\(")
REDUCE_KERNEL = re.compile(r"splitk_reduce_kernel<(.*)>\(")
PROBLEM = re.compile(r"(\w+(?:<(?:true|false)>)?)$")  # the last name: ConvForward<false>, LinearForward, ...


def problem_of(arg):
    """'safnet::...::SplitKPartials<...::ConvBackwardWeight> ' -> ('ConvBackwardWeight', True)."""
    arg = arg.strip()
    m = re.match(r"(?:\S+::)?SplitKPartials<(.*)>$", arg)
    partials = bool(m)
    if m:
        arg = m.group(1).strip()
    return PROBLEM.search(arg).group(1), partials


def kernel_key(name):
    """(problem, partials, 'BMxBN', mode, threads) of a GEMM kernel's demangled name, or None."""
    m = TC_KERNEL.search(name)
    if m:
        bm, bn, wm, wn, mode = (int(g) for g in m.groups()[:5])
        problem, partials = problem_of(m.group(6))
        return problem, partials, f"{bm}x{bn}", MODES[mode], WARP * (bm // wm) * (bn // wn)
    m = TILED_KERNEL.search(name)
    if m:
        bm, bn, _, tm, tn = (int(g) for g in m.groups()[:5])
        problem, partials = problem_of(m.group(6))
        return problem, partials, f"{bm}x{bn}", "fp32", (bm // tm) * (bn // tn)
    return None


def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
        return out.splitlines()
    except (OSError, subprocess.CalledProcessError):
        sys.exit("occupancy.py: c++filt (binutils) is needed to read the kernel names")


def parse_res_usage(text):
    """[(mangled name, registers, static shared bytes)] from cuobjdump -res-usage output."""
    out, name = [], None
    for line in text.splitlines():
        m = FUNCTION.match(line)
        if m:
            name = m.group(1)
            continue
        r = RESOURCES.search(line)
        if name and r:
            out.append((name, int(r.group(1)), int(r.group(2))))
            name = None
    return out


def find_cuobjdump(given):
    asked = given or os.environ.get("CUOBJDUMP")
    for c in [asked] if asked else (shutil.which("cuobjdump"), *FALLBACK_CUOBJDUMP):
        if c and os.access(c, os.X_OK):
            return c
    if asked:
        sys.exit(f"occupancy.py: {asked} is not executable")
    sys.exit("occupancy.py: no cuobjdump (pass --cuobjdump or set CUOBJDUMP); without a CUDA toolkit:\n"
             "  pip install --target /tmp/nvtools nvidia-cuda-cuobjdump\n"
             "  tools/occupancy.py --cuobjdump /tmp/nvtools/nvidia/cu13/bin/cuobjdump")


def read_kernels(cuobjdump, objects):
    """{(problem, partials, tile, mode): (threads, regs, smem, demangled name)} plus the reduce kernels."""
    kernels, reduce = {}, {}
    for obj in objects:
        if not os.path.exists(obj):
            sys.exit(f"occupancy.py: {obj} missing; build it: tools/build.sh --target safnet_cuda_gpu")
        text = subprocess.run([cuobjdump, "-res-usage", obj], capture_output=True, text=True, check=True).stdout
        usage = parse_res_usage(text)
        for (_, regs, smem), name in zip(usage, demangle([u[0] for u in usage])):
            key = kernel_key(name)
            if key:
                kernels[key[:4]] = (key[4], regs, smem, name)
            elif REDUCE_KERNEL.search(name):
                reduce[problem_of(REDUCE_KERNEL.search(name).group(1))[0]] = (regs, smem)
    if not kernels:
        sys.exit("occupancy.py: no GEMM kernels in " + ", ".join(objects))
    return kernels, reduce


# --- launches: the test's gemm lines ------------------------------------------------------------

PASSES = {"forward": "Forward", "backward-data": "BackwardData", "backward-weight": "BackwardWeight"}


def parse_launches(lines):
    out = []
    for line in lines:
        if not line.startswith("gemm "):
            continue
        f = [x.strip() for x in line[len("gemm "):].split("|")]
        arch, layer, shape, pass_, mnk, mode, tile, threads, blocks, parts = f
        out.append(dict(arch=arch, layer=layer, shape=shape, pass_=pass_, mnk=mnk, mode=mode, tile=tile,
                        threads=int(threads), blocks=int(blocks), parts=int(parts)))
    return out


def problem_for(launch):
    """The kernel's problem type for a launch: forward is the plain conv (unfused) kernel."""
    op = "Conv" if launch["shape"].startswith("conv") else "Linear"
    problem = op + PASSES[launch["pass_"]]
    if problem == "ConvForward":
        problem += "<false>"
    return problem, launch["parts"] > 1


def join(launches, kernels):
    for l in launches:
        problem, partials = problem_for(l)
        key = (problem, partials, l["tile"], l["mode"])
        if key not in kernels:
            sys.exit(f"occupancy.py: no kernel {key} in the objects for {l['arch']} {l['layer']} {l['pass_']}")
        threads, regs, smem, _ = kernels[key]
        if threads != l["threads"]:
            sys.exit(f"occupancy.py: {key} has {threads} threads per block, the launch {l['threads']}")
        l["kernel"], l["regs"], l["smem"] = key, regs, smem
        l["per_sm"], l["limit"] = blocks_per_sm(threads, regs, smem)
        l["waves"] = waves(l["blocks"], l["per_sm"])
    return launches


# --- tables -------------------------------------------------------------------------------------


def fmt_waves(w):
    return f"{w:.3f}" if w < 10 else f"{w:.1f}"


def same(values):
    """One value when all modes agree, else each mode's, in mode order."""
    values = list(dict.fromkeys(values))
    return str(values[0]) if len(values) == 1 else " / ".join(str(v) for v in values)


def kernel_table(launches, kernels):
    """One row per GEMM kernel the launches use, plus the fused forward kernel of each tile."""
    used = {l["kernel"] for l in launches}
    used |= {("ConvForward<true>",) + k[1:] for k in used if k[0] == "ConvForward<false>"}
    rows = {}
    for problem, partials, tile, mode in used:
        if (problem, partials, tile, mode) not in kernels:
            continue
        threads, regs, smem, _ = kernels[(problem, partials, tile, mode)]
        per_sm, limit = blocks_per_sm(threads, regs, smem)
        kind = f"`{problem}`" + (" split-K partials" if partials else "")
        rows.setdefault((kind, tile, threads), {})[mode] = f"{regs} / {smem} / {per_sm} ({limit})"
    order = ["ConvForward<false>", "ConvForward<true>", "ConvBackwardData",
             "ConvBackwardWeight", "LinearForward", "LinearBackwardData", "LinearBackwardWeight"]
    lines = ["| kernel | tile | threads | " + " | ".join(MODES) + " |", "|---|---|---|" + "---|" * len(MODES)]
    def rank(row):
        kind, tile, threads = row[0]
        return order.index(kind.split()[0].strip("`")), kind, -threads, int(tile.split("x")[0])

    for (kind, tile, threads), by_mode in sorted(rows.items(), key=rank):
        cells = [by_mode.get(m, "") for m in MODES]
        lines.append(f"| {kind} | {tile} | {threads} | " + " | ".join(cells) + " |")
    return lines


def launch_table(launches):
    """One row per (layer shape, pass): fp32 on the SIMT kernel, then the tensor-core modes, which
    share a tile and grid unless the planner picks differently (then each mode's, in order)."""
    rows = {}
    for l in launches:
        rows.setdefault((l["layer"], l["shape"], l["pass_"], l["mnk"]), {})[l["mode"]] = l
    head = ("| layer (n) | shape | pass | GEMM M x N x K | fp32: tile | blocks | blocks/SM | waves "
            "| TC: tile | blocks | " + " | ".join(f"{m}: blocks/SM | waves" for m in TC_MODES) + " |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (layer, shape, pass_, mnk), by_mode in rows.items():
        f = by_mode["fp32"]
        tc = [by_mode[m] for m in TC_MODES]
        cells = [layer, shape, pass_, mnk.replace("x", " x "), f["tile"], str(f["blocks"]),
                 f"{f['per_sm']} ({f['limit']})", fmt_waves(f["waves"]),
                 same(t["tile"] for t in tc), same(t["blocks"] for t in tc)]
        for t in tc:
            cells += [f"{t['per_sm']} ({t['limit']})", fmt_waves(t["waves"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def wrap(text):
    return textwrap.wrap(text, 100, break_on_hyphens=False)


def report(launches, kernels, reduce):
    out = ["**GEMM kernels (sm_90): registers / static shared bytes / blocks per SM (binding limit)**", ""]
    out += kernel_table(launches, kernels)
    if reduce:
        out += [""] + wrap("`splitk_reduce_kernel` (registers / static shared bytes): " +
                           ", ".join(f"{p} {r} / {s}" for p, (r, s) in sorted(reduce.items())) +
                           "; its blocks are in the launch geometry tables.")
    for arch in dict.fromkeys(l["arch"] for l in launches):
        out += ["", f"**{arch}, batch 128: GEMM launches per math mode (a wave = blocks/SM x {SMS} blocks)**", ""]
        out += launch_table([l for l in launches if l["arch"] == arch])
    out += [""] + wrap("Forward rows run the unfused conv kernel (`ConvForward<false>`); evaluation with batch norm "
                       "after the conv runs the fused one (`ConvForward<true>`), whose blocks per SM are in the kernel "
                       "table. Backward-weight rows with parts > 1 run the split-K partials kernel, then "
                       "`splitk_reduce_kernel`.")
    return "\n".join(out)


# --- self-test ----------------------------------------------------------------------------------


def self_test():
    cases = [
        # threads, regs, smem -> blocks, limit
        ((256, 58, 4096), (4, "regs")),  # 64 regs: 2048 per warp, 8 warps per sub-partition, 32 warps
        ((256, 48, 4096), (5, "regs")),  # 1536 per warp: 10 per sub-partition, 40 warps, 5 blocks of 8
        ((256, 32, 0), (8, "threads=regs")),  # 1024 per warp: 16 per sub-partition, 64 warps
        ((128, 40, 29440), (7, "smem")),  # 30464 B per block: 7 in 233472; regs allow 12, threads 16
        ((128, 64, 29184), (7, "smem")),  # 30208 B: 7; regs allow 8
        ((128, 72, 0), (7, "regs")),  # 2304 per warp: 7 per sub-partition, 28 warps, 7 blocks of 4
        ((32, 16, 0), (32, "blocks")),
        ((96, 40, 0), (16, "regs")),  # 3 warps: 48 warps by regs / 3 = 16; threads allow 21
        ((1024, 255, 0), (0, "regs")),  # 8192 per warp: 2 per sub-partition, 8 warps < 32
        ((128, 256, 0), (0, "does not fit")),
        ((128, 16, 227 * 1024 + 1), (0, "does not fit")),
        ((128, 16, 227 * 1024), (1, "smem")),  # with the reserved KiB: all 228 KiB
        ((256, 30, 0), (8, "threads=regs")),  # 30 rounds up to 32
    ]
    bad = 0
    for args, want in cases:
        got = blocks_per_sm(*args)
        if got != want:
            print(f"blocks_per_sm{args} = {got}, expected {want}")
            bad += 1
    name = ("void safnet::cuda::gpu::tc_gemm_kernel<safnet::cuda::gpu::TcTile<16, 128, 16, 32>, (safnet::MathMode)2, "
            "safnet::cuda::gpu::SplitKPartials<safnet::cuda::gpu::(anonymous namespace)::ConvBackwardWeight> >"
            "(safnet::cuda::gpu::SplitKPartials<safnet::cuda::gpu::(anonymous namespace)::ConvBackwardWeight>, int)")
    named = [(kernel_key(name), ("ConvBackwardWeight", True, "16x128", "tf32", 128)),
             (kernel_key("void safnet::cuda::gpu::tiled_gemm_kernel<64, 64, 8, 4, 4, safnet::cuda::gpu::"
                         "(anonymous namespace)::ConvForward<false> >(safnet::cuda::gpu::(anonymous namespace)::"
                         "ConvForward<false>, int)"), ("ConvForward<false>", False, "64x64", "fp32", 256)),
             (problem_for(dict(shape="linear 64->10", pass_="backward-weight", parts=8)),
              ("LinearBackwardWeight", True)),
             (problem_for(dict(shape="conv 1x1 s2, 64->128, 56x56", pass_="backward-data", parts=1)),
              ("ConvBackwardData", False))]
    for got, want in named:
        if got != want:
            print(f"parsed {got}, expected {want}")
            bad += 1
    print(f"occupancy self-test: {len(cases) + len(named) - bad}/{len(cases) + len(named)} passed")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--launches", help="the test's output (- for stdin); default: run " + TEST)
    ap.add_argument("--cuobjdump", help="cuobjdump to read the objects with")
    ap.add_argument("--objects", nargs="+", default=[os.path.join(ROOT, o) for o in OBJECTS])
    ap.add_argument("--self-test", action="store_true", help="check the blocks-per-SM arithmetic and exit")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    kernels, reduce = read_kernels(find_cuobjdump(args.cuobjdump), args.objects)
    if args.launches == "-":
        text = sys.stdin.read()
    elif args.launches:
        with open(args.launches) as f:
            text = f.read()
    else:
        test = os.path.join(ROOT, TEST)
        if not os.access(test, os.X_OK):
            sys.exit(f"occupancy.py: {test} missing; build it: tools/build.sh --target test_sim")
        text = subprocess.run([test, "--gtest_filter=" + TEST_FILTER], capture_output=True, text=True,
                              check=True).stdout
    launches = parse_launches(text.splitlines())
    if not launches:
        sys.exit("occupancy.py: no gemm lines in the launches")
    print(report(join(launches, kernels), kernels, reduce))
    return 0


if __name__ == "__main__":
    sys.exit(main())
