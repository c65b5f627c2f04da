#!/usr/bin/env python3
"""The instruction mix of each kernel's SASS, and of its main loop, from `cuobjdump -sass` output.

The main loop is the innermost backward branch whose body holds an HMMA (tensor-core kernels) or,
failing that, an FFMA. Prints one row per kernel: instructions, HMMA, FFMA, global and shared loads
and local-memory accesses (spills), in the whole kernel and in the loop, and the loop's HMMA share
of all its instructions and of its multiply-adds (HMMA / (HMMA + FFMA)).

  cuobjdump -sass build/CMakeFiles/safnet_cuda_gpu.dir/cuda/kernels/conv2d.cu.o | tools/sass_mix.py [--filter WORD]
"""
import argparse
import re
import subprocess
import sys

INSN = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
BRANCH_TARGET = re.compile(r"0x([0-9a-f]+)")


def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
        return out.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return names


def kernels(lines):
    name, body = None, []
    for line in lines:
        if "Function :" in line:
            if name:
                yield name, body
            name, body = line.split("Function :", 1)[1].strip(), []
        elif name:
            m = INSN.search(line)
            if m:
                body.append((int(m.group(1), 16), m.group(2), m.group(3)))
    if name:
        yield name, body


def counts(insns):
    c = {"insns": len(insns), "HMMA": 0, "FFMA": 0, "LDG": 0, "LDS": 0, "LDSM": 0, "LD": 0, "local": 0, "LDG.128": 0}
    for _, op, _ in insns:
        base = op.split(".")[0]
        if base in ("HMMA", "FFMA", "LDG", "LDS", "LDSM", "LD"):
            c[base] += 1
        if base == "LDSM":
            c["LDS"] += 1
        if base in ("LDL", "STL"):
            c["local"] += 1
        if base == "LDG" and ".128" in op:
            c["LDG.128"] += 1
    return c


def main_loop(insns):
    best = None
    for want in ("HMMA", "FFMA"):
        for addr, op, args in insns:
            if op.split(".")[0] != "BRA":
                continue
            t = BRANCH_TARGET.search(args)
            if not t or int(t.group(1), 16) >= addr:
                continue
            lo = int(t.group(1), 16)
            body = [i for i in insns if lo <= i[0] <= addr]
            if any(i[1].split(".")[0] == want for i in body) and (best is None or len(body) < len(best)):
                best = body
        if best:
            return best
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--filter", default="", help="only kernels whose demangled name contains this")
    args = ap.parse_args()
    ks = list(kernels(sys.stdin.read().splitlines()))
    names = demangle([k[0] for k in ks])
    print("| kernel | insns | HMMA | FFMA | LDG (128-bit) | local | loop insns | loop HMMA | loop FFMA | loop LDG | loop LDS "
          "(LDSM) | loop LD | HMMA share of loop | HMMA / (HMMA+FFMA) in loop |")
    print("| --- " * 14 + "|")
    for (mangled, insns), name in zip(ks, names):
        if args.filter not in name:
            continue
        a, lp = counts(insns), counts(main_loop(insns))
        mma = lp["HMMA"] + lp["FFMA"]
        short = re.sub(r"safnet::cuda::gpu::|\(anonymous namespace\)::|safnet::", "", name)
        print(f"| `{short}` | {a['insns']} | {a['HMMA']} | {a['FFMA']} | {a['LDG']} ({a['LDG.128']}) | {a['local']} | "
              f"{lp['insns']} | {lp['HMMA']} | {lp['FFMA']} | {lp['LDG']} | {lp['LDS']} ({lp['LDSM']}) | {lp['LD']} | "
              f"{100.0 * lp['HMMA'] / max(1, lp['insns']):.1f}% | {100.0 * lp['HMMA'] / max(1, mma):.0f}% |")


if __name__ == "__main__":
    main()
