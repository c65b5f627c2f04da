#!/usr/bin/env python3
"""Export of a PyTorch state dict to safetensors, for `safnet import`.

  tools/export_torch.py MODEL.pth OUT.safetensors
  tools/export_torch.py --torchvision resnet18 [--random --seed S] [--classes K] OUT.safetensors

MODEL.pth may hold a state dict, a dict with one under "state_dict" or "model", or a whole
nn.Module. A leading "module." (DataParallel) is stripped from every name. Floating tensors are
written as F32, integer ones (num_batches_tracked) as I64. --torchvision takes torchvision's
architecture: with --random its freshly initialised weights (seeded), otherwise its ImageNet
weights (IMAGENET1K_V1, from torch's cache or downloaded).

Runs with Debian's python3-torch (/usr/bin/python3). torch 1.13 has no safetensors package, so
the format is written here: 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}, "__metadata__": {...}} padded with spaces to a multiple of
8 bytes, then the tensors back to back in header order."""
import argparse
import json
import struct
import sys

import torch


def state_dict_of(obj, path):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], (dict, torch.nn.Module)):
                return state_dict_of(obj[key], path)
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    sys.exit(f"export_torch.py: {path}: no state dict found (a dict of tensors, or one under 'state_dict'/'model')")


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, torch.Tensor); floating -> F32, integer -> I64."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        if t.is_floating_point():
            t, dtype = t.to(torch.float32), "F32"
        elif t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            t, dtype = t.to(torch.int64), "I64"
        else:
            sys.exit(f"export_torch.py: tensor '{name}' has unsupported dtype {t.dtype}")
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = dict(metadata or {})
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def torchvision_model(arch, random, seed, classes):
    import torchvision
    ctor = getattr(torchvision.models, arch, None)
    if ctor is None:
        sys.exit(f"export_torch.py: torchvision has no model '{arch}'")
    if random:
        torch.manual_seed(seed)
        return ctor(weights=None, num_classes=classes or 1000)
    if classes and classes != 1000:
        sys.exit("export_torch.py: --classes needs --random (the ImageNet weights have 1000 classes)")
    return ctor(weights="IMAGENET1K_V1")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", help="[MODEL.pth] OUT.safetensors")
    p.add_argument("--torchvision", metavar="ARCH", help="torchvision architecture, e.g. resnet18")
    p.add_argument("--random", action="store_true", help="with --torchvision: random weights")
    p.add_argument("--seed", type=int, default=0, help="seed of --random")
    p.add_argument("--classes", type=int, default=0, help="with --torchvision --random: classifier outputs")
    a = p.parse_args()
    if a.torchvision:
        if len(a.paths) != 1:
            p.error("--torchvision takes one path: OUT.safetensors")
        state = torchvision_model(a.torchvision, a.random, a.seed, a.classes).state_dict()
        source = f"torchvision:{a.torchvision}" + (f":random:{a.seed}" if a.random else ":IMAGENET1K_V1")
    else:
        if len(a.paths) != 2 or a.random:
            p.error("give MODEL.pth OUT.safetensors (--random needs --torchvision)")
        state = state_dict_of(torch.load(a.paths[0], map_location="cpu"), a.paths[0])
        source = a.paths[0]
    tensors = [(k[len("module."):] if k.startswith("module.") else k, v) for k, v in state.items()]
    write_safetensors(a.paths[-1], tensors, {"source": source})
    print(f"{a.paths[-1]}: {len(tensors)} tensors from {source}")


if __name__ == "__main__":
    main()
