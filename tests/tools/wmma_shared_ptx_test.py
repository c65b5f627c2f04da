#!/usr/bin/env python3
"""Our shared-memory WMMA loads and stores (cuda/wmma.h) against CUDA's, on the PTX nvcc writes.

tests/cuda/wmma_shared_ptx.cu has, for every fragment kind the tensor-core GEMM uses, a kernel that
loads it by wmma::load_matrix_sync (`_cuda`) and one that loads it by ours (`_ours`), each writing
the fragment's words in index order; and kernels that store an accumulator read in index order.
Word i of a fragment must be register i of the instruction in both, and ours must be CUDA's
instruction with `.shared` (which nvcc gives CUDA's own only for the m16n16k16 accumulator store). Then the PTX of
cuda/kernels/conv2d.cu and linear.cu must hold no generic wmma.load or wmma.store.

  wmma_shared_ptx_test.py SOURCE_DIR NVCC ARCH
"""
import re
import subprocess
import sys
import tempfile

WMMA = re.compile(r"\b(wmma\.(?:load|store)\.[a-z]\.sync[.a-z0-9]*)\s+(.*);")
REGS = re.compile(r"\{([^}]*)\}")


def ptx(src, nvcc, arch, root, out, defines=()):
    cmd = [nvcc, "-ptx", "-O3", "-std=c++20", f"-arch=sm_{arch}", f"-I{root}", *defines, src, "-o", out]
    subprocess.run(cmd, check=True)
    return open(out).read()


def entries(text):
    for m in re.finditer(r"\.entry (\w+)\((.*?)\n\}", text, re.S):
        yield m.group(1), m.group(2)


def regs(s):
    return [r.strip() for r in REGS.search(s).group(1).split(",")]


def resolve(body):
    """dst -> src of each plain register move, so stored values trace back to where they came from."""
    moves = dict(re.findall(r"mov\.b32\s+(%\w+), (%\w+);", body))
    def follow(r):
        seen = set()
        while r in moves and r not in seen:
            seen.add(r)
            r = moves[r]
        return r
    return follow


def check_load(name, body, errors):
    (op, operands), = WMMA.findall(body)
    dests = regs(operands)
    stores = re.findall(r"st\.global\.v4\.u32\s+\[[^\]]*\],\s*(\{[^}]*\});", body)
    if len(stores) != 1:
        errors.append(f"{name}: expected one 16-byte store of the fragment's words, found {len(stores)}")
        return op
    follow = resolve(body)
    written = [follow(r) for r in regs(stores[0])]
    if written != dests:
        errors.append(f"{name}: words {written} are not the load's registers {dests} in order")
    return op


def check_store(name, body, errors):
    (op, operands), = WMMA.findall(body)
    index = {}  # register -> fragment word, from the two 16-byte loads of g[lane]
    for group, offset in re.findall(r"ld\.global\.v4\.f32\s+(\{[^}]*\}),\s*\[%rd\d+(?:\+(\d+))?\];", body):
        for i, r in enumerate(regs(group)):
            index[r] = int(offset or 0) // 4 + i
    follow = resolve(body)
    words = [index.get(follow(r)) for r in regs(operands)]
    if words != list(range(8)):
        errors.append(f"{name}: stores words {words}, not 0..7 in order")
    return op


def main():
    root, nvcc = sys.argv[1], sys.argv[2]
    arch = max(80, int(sys.argv[3]))  # TF32 and BF16 fragments begin with sm_80
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        text = ptx(f"{root}/tests/cuda/wmma_shared_ptx.cu", nvcc, arch, root, f"{tmp}/t.ptx")
        ops = {}
        for name, body in entries(text):
            check = check_store if name.startswith("wmma_d_") else check_load
            ops[name] = check(name, body, errors)
        pairs = sorted({n.rsplit("_", 1)[0] for n in ops})
        if len(pairs) != 10:
            errors.append(f"expected 8 load kinds and 2 store shapes, found {pairs}")
        for kind in pairs:
            cuda, ours = ops.get(kind + "_cuda", ""), ops.get(kind + "_ours", "")
            if ".shared" not in ours or ours.replace(".shared", "") != cuda.replace(".shared", ""):
                errors.append(f"{kind}: ours {ours!r} should be CUDA's {cuda!r} addressing shared memory")
        for kernels in ("conv2d", "linear"):
            text = ptx(f"{root}/cuda/kernels/{kernels}.cu", nvcc, arch, root, f"{tmp}/{kernels}.ptx",
                       ("-DSAFNET_CUDA_REAL", "-DNDEBUG"))
            found = [op for op, _ in WMMA.findall(text)]
            generic = sorted({op for op in found if ".shared" not in op})
            if not found or generic:
                errors.append(f"{kernels}.cu: {len(found)} wmma loads and stores, generic ones: {generic}")
            else:
                print(f"{kernels}.cu: all {len(found)} wmma loads and stores address shared memory")
    for e in errors:
        print("FAIL:", e)
    if not errors:
        print(f"{len(ops)} kernels: our shared loads and stores take the fragment words in CUDA's order")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
