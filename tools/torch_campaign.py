#!/usr/bin/env python3
"""A small fault campaign in PyTorch, the baseline for `safnet faults` throughput (tools/gpu_check.sh):
the same checkpoint (a safnet CIFAR ResNet, safetensors), the same test images, the same BER on the
f32 conv and linear weights (the SAF's targets), the SAF applied as the weights are read.

  tools/torch_campaign.py --checkpoint CKPT --data DIR [--model resnet20] [--saf tanh] [--ber 1e-5]
                          [--trials 20] [--seed 1] [--batch 256] [--limit N] [--device cpu|cuda]

Each trial draws its flips with torch's generator (each stored bit flips with probability BER: a
binomial count, then distinct positions), XORs them into the weights, evaluates the test set, and
XORs them back. The flips are not safnet's (Philox streams); this measures trials per hour, and the
mean top-1 for a sanity check. Prints one line per trial and a summary line:
  torch campaign (DEVICE): N trials in S s = T trials/hour; top1 mean M%"""
import argparse
import json
import os
import struct
import sys
import time


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} from a safetensors file (the format is a JSON header + raw data)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        sys.exit(f"torch_campaign: {path}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        sys.exit(f"torch_campaign: {path}: header length {n} past the end of the file")
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], blob[8 + n + b:8 + n + e])
    return out


def load_resnet(checkpoint, model_name, saf, who):
    """torch_reference's CIFAR ResNet with a safnet checkpoint's f32 tensors; exits naming the file."""
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_reference as ref
    model = ref.ResNet(int(model_name[6:]), saf)
    tensors = read_safetensors(checkpoint)
    state = model.state_dict()
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        if name not in tensors:
            sys.exit(f"{who}: {checkpoint}: no tensor '{name}' (is it a {model_name}?)")
        dtype, shape, raw = tensors[name]
        if dtype != "F32" or list(shape) != list(t.shape):
            sys.exit(f"{who}: {checkpoint}: '{name}' is {dtype} {shape}, want F32 {list(t.shape)}")
        t.copy_(torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(t.shape))
    model.load_state_dict(state)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--saf", default="tanh")
    p.add_argument("--ber", type=float, default=1e-5)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    a = p.parse_args()
    if not (0 <= a.ber <= 1):
        p.error(f"--ber {a.ber}: not a probability")
    if a.trials < 1:
        p.error("--trials must be at least 1")
    if not (a.device == "cpu" or a.device == "cuda" or (a.device.startswith("cuda:") and a.device[5:].isdigit())):
        p.error(f"unknown device '{a.device}' (valid: cpu, cuda, cuda:N)")
    if not a.model.startswith("resnet") or not a.model[6:].isdigit() or (int(a.model[6:]) - 2) % 6:
        p.error(f"--model {a.model}: a CIFAR ResNet (resnet20, resnet32, ...)")

    import torch  # after the arguments, so --help and bad flags need no PyTorch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_reference as ref

    if a.saf not in ref.SAFS:
        p.error(f"--saf {a.saf}: one of {', '.join(sorted(ref.SAFS))}")
    if a.device != "cpu" and not torch.cuda.is_available():
        p.error(f"--device {a.device}: this PyTorch sees no CUDA GPU")
    device = torch.device(a.device)

    model = load_resnet(a.checkpoint, a.model, a.saf, "torch_campaign")
    model.to(device).eval()
    targets = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    bits = [32 * w.numel() for w in targets]

    x, y = ref.read_cifar([os.path.join(a.data, "test_batch.bin")], a.limit)
    x, y = x.to(device), y.to(device)
    gen = torch.Generator().manual_seed(a.seed)
    clean, _ = ref.evaluate(model, x, y, a.batch)
    ref.sync(device)
    t0 = time.perf_counter()
    tops = []
    for trial in range(a.trials):
        flips = []
        with torch.no_grad():
            for w, nbits in zip(targets, bits):
                count = int(torch.binomial(torch.tensor(float(nbits)), torch.tensor(a.ber), generator=gen).item())
                if count == 0:
                    continue
                pos = torch.randperm(nbits, generator=gen)[:count] if count * 4 > nbits else \
                    torch.unique(torch.randint(0, nbits, (2 * count,), generator=gen))[:count]
                # Bits of one word are distinct, so their sum is their OR (int32 wraps at bit 31).
                words, inverse = torch.unique(pos // 32, return_inverse=True)
                mask = torch.zeros(len(words), dtype=torch.int32).index_add_(
                    0, inverse, torch.ones(count, dtype=torch.int32) << (pos % 32).to(torch.int32))
                words, mask = words.to(device), mask.to(device)
                flat = w.data.view(-1).view(torch.int32)
                flat[words] ^= mask
                flips.append((flat, words, mask, count))
            top1, _ = ref.evaluate(model, x, y, a.batch)
            for flat, words, mask, _ in flips:
                flat[words] ^= mask
        tops.append(top1)
        print(f"trial {trial} flips {sum(f[3] for f in flips)} top1 {top1:.2f}%", flush=True)
    ref.sync(device)
    dt = time.perf_counter() - t0
    print(f"torch campaign ({a.device}): {a.trials} trials in {dt:.2f} s = {a.trials / dt * 3600:.0f} trials/hour; "
          f"clean top1 {clean:.2f}%, top1 mean {sum(tops) / len(tops):.2f}% (BER {a.ber:g}, {len(y)} images)")


if __name__ == "__main__":
    main()
