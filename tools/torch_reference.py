#!/usr/bin/env python3
"""PyTorch reference for benchmarks and accuracy comparisons: the same CIFAR ResNet (option A),
SAF on conv/linear weights, recipe and data as `safnet train`, on the CPU or a GPU.

  tools/torch_reference.py train --data DIR [--model resnet20] [--saf tanh] [--epochs 30] [--limit N] [--device cpu|cuda]
  tools/torch_reference.py eval  --data DIR [--model resnet20] [--repeat 10] [--batch 256] [--device cpu|cuda]

Runs with Debian's python3-torch (/usr/bin/python3) on the CPU, or any PyTorch with CUDA for
--device cuda (tools/gpu_check.sh). Prints images/s and test accuracy."""
import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SAFS = {
    "none": lambda w: w,
    "tanh": torch.tanh,
    "softsign": lambda w: w / (1 + w.abs()),
    "arctan": torch.atan,
}
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)


class SafConv(nn.Conv2d):
    def __init__(self, *a, saf="none", **k):
        super().__init__(*a, **k)
        self.saf = SAFS[saf]

    def forward(self, x):
        return F.conv2d(x, self.saf(self.weight), None, self.stride, self.padding)


class SafLinear(nn.Linear):
    def __init__(self, *a, saf="none", **k):
        super().__init__(*a, **k)
        self.saf = SAFS[saf]

    def forward(self, x):
        return F.linear(x, self.saf(self.weight), self.bias)


class Block(nn.Module):
    def __init__(self, cin, planes, stride, saf):
        super().__init__()
        self.conv1 = SafConv(cin, planes, 3, stride, 1, bias=False, saf=saf)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = SafConv(planes, planes, 3, 1, 1, bias=False, saf=saf)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if (stride != 1 or cin != planes) else 0

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad)) if self.pad else x
        return F.relu(out + short)


class ResNet(nn.Module):
    def __init__(self, depth, saf, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = SafConv(3, 16, 3, 1, 1, bias=False, saf=saf)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            blocks = []
            for i in range(n):
                blocks.append(Block(cin, planes, 2 if stage > 0 and i == 0 else 1, saf))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = SafLinear(64, classes, saf=saf)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def read_cifar(files, limit):
    raw = np.concatenate([np.fromfile(f, dtype=np.uint8).reshape(-1, 3073) for f in files])
    if limit:
        raw = raw[:limit]
    x = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    x = (x - MEAN[None, :, None, None]) / STD[None, :, None, None]
    return torch.from_numpy(x), torch.from_numpy(raw[:, 0].astype(np.int64))


def augment(x, gen):
    """Random crop 32 from the image padded by 4, then a horizontal flip with probability 1/2; the
    random draws come from `gen` (CPU) whatever x's device, the crop is one gather on x's device."""
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4), value=0.0)
    # pad with the normalised value of a black pixel, as safnet pads before normalising
    black = torch.from_numpy(-MEAN / STD)[None, :, None, None].to(x.device)
    mask = F.pad(torch.zeros_like(x[:, :1]), (4, 4, 4, 4), value=1.0)
    padded = padded + mask * black
    dy = torch.randint(0, 9, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, 9, (n,), generator=gen).to(x.device)
    flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
    ar = torch.arange(32, device=x.device)
    rows = dy[:, None] + ar                                                 # (n, 32)
    cols = torch.where(flip[:, None], dx[:, None] + 31 - ar, dx[:, None] + ar)  # (n, 32)
    idx = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # (n, 32, 32, C)
    return out.permute(0, 3, 1, 2).contiguous()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(model, x, y, batch):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for s in range(0, len(y), batch):
            out = model(x[s:s + batch])
            loss += F.cross_entropy(out, y[s:s + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[s:s + batch]).sum().item()
    return 100.0 * correct / len(y), loss / len(y)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "eval"])
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--saf", default="none", choices=sorted(SAFS))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    a = p.parse_args()
    if not (a.device == "cpu" or a.device == "cuda" or (a.device.startswith("cuda:") and a.device[5:].isdigit())):
        p.error(f"unknown device '{a.device}' (valid: cpu, cuda, cuda:N)")
    if a.device != "cpu" and not torch.cuda.is_available():
        p.error(f"--device {a.device}: this PyTorch sees no CUDA GPU")
    device = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    depth = int(a.model.replace("resnet", ""))
    model = ResNet(depth, a.saf).to(device)
    xte, yte = read_cifar([os.path.join(a.data, "test_batch.bin")], a.limit)
    xte, yte = xte.to(device), yte.to(device)
    if a.mode == "eval":
        evaluate(model, xte, yte, a.batch)  # warm-up (CUDA context, cuDNN plans)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(a.repeat):
            top1, _ = evaluate(model, xte, yte, a.batch)
        sync(device)
        dt = time.perf_counter() - t0
        print(f"torch eval ({a.device}): {a.repeat} x {len(yte)} images in {dt:.2f}s = {a.repeat * len(yte) / dt:.0f} img/s")
        return
    xtr, ytr = read_cifar([os.path.join(a.data, f"data_batch_{i}.bin") for i in range(1, 6)], a.limit)
    xtr, ytr = xtr.to(device), ytr.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    steps = math.ceil(len(ytr) / a.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / (steps * a.epochs))))
    gen = torch.Generator().manual_seed(a.seed)
    t_start = time.perf_counter()
    for epoch in range(a.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(ytr), generator=gen).to(device)
        total = 0.0
        for s in range(0, len(ytr), a.batch):
            idx = perm[s:s + a.batch]
            out = model(augment(xtr[idx], gen))
            loss = F.cross_entropy(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        sync(device)
        dt = time.perf_counter() - t0
        top1, tl = evaluate(model, xte, yte, 256)
        print(f"epoch {epoch + 1}/{a.epochs} train loss {total / len(ytr):.4f} test top1 {top1:.2f}% "
              f"loss {tl:.4f} {dt:.1f}s ({len(ytr) / dt:.0f} img/s, {a.device})", flush=True)
    print(f"torch: test top1 {top1:.2f}% total {time.perf_counter() - t_start:.1f}s")


if __name__ == "__main__":
    main()
