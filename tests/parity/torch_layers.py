#!/usr/bin/env python3
"""Reference for tests/host/torch_parity_test.cpp: reads inputs from a safetensors file, runs the
same small network with PyTorch (SAF applied to conv and linear weights), and writes the outputs
and gradients to another safetensors file. Usage: torch_layers.py IN OUT"""
import json
import struct
import sys

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    buf = data[8 + n:]
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", info
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(buf[b:e]), dtype=torch.float32).reshape(info["shape"])
        out[name] = t.clone()
    return out, meta


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


SAFS = {
    "none": lambda w, c: w,
    "tanh": lambda w, c: torch.tanh(w),
    "tanh_c": lambda w, c: torch.tanh(c * w),
    "softsign": lambda w, c: w / (1 + w.abs()),
    "arctan": lambda w, c: torch.atan(w),
    "arctan2pi": lambda w, c: torch.atan(w) * (2 / torch.pi),
}


def main():
    t, meta = read_safetensors(sys.argv[1])
    conv_saf, lin_saf, c = meta["conv_saf"], meta["linear_saf"], float(meta["c"])
    stride, pad, eps, momentum = int(meta["stride"]), int(meta["pad"]), float(meta["eps"]), float(meta["momentum"])
    params = {k: t[k].clone().requires_grad_(True) for k in ["conv.weight", "bn.weight", "bn.bias", "fc.weight", "fc.bias"]}
    x = t["x"].clone().requires_grad_(True)
    labels = t["labels"].round().long()
    rmean, rvar = t["bn.running_mean"].clone(), t["bn.running_var"].clone()
    h = F.conv2d(x, SAFS[conv_saf](params["conv.weight"], c), stride=stride, padding=pad)
    h = F.batch_norm(h, rmean, rvar, params["bn.weight"], params["bn.bias"], training=True, momentum=momentum, eps=eps)
    h = F.relu(h).flatten(1)
    logits = F.linear(h, SAFS[lin_saf](params["fc.weight"], c), params["fc.bias"])
    loss = F.cross_entropy(logits, labels, label_smoothing=float(meta["smoothing"]))
    loss.backward()
    out = {"loss": loss.detach().reshape(1), "logits": logits.detach(), "grad.x": x.grad,
           "bn.running_mean": rmean, "bn.running_var": rvar}
    for k, p in params.items():
        out["grad." + k] = p.grad
    write_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
