#!/usr/bin/env python3
"""PyTorch side of the ResNet import parity tests: a random model, its state dict, random inputs
and the model's eval-mode logits on them.

  torch_resnet.py ARCH SEED CLASSES SIZE DIR

writes DIR/model.pth and DIR/io.safetensors holding "x" (2, 3, SIZE, SIZE) and "logits".
ARCH: resnet18/resnet34 (torchvision) or resnet20/32/44/56/110 (tools/torch_reference.py, no SAF).
Batch-norm affine parameters and running statistics are randomised too, so their import is
tested (a fresh model has 1/0 everywhere)."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from export_torch import write_safetensors  # noqa: E402


def build(arch, classes):
    if arch in ("resnet18", "resnet34"):
        import torchvision
        return getattr(torchvision.models, arch)(weights=None, num_classes=classes)
    import torch_reference
    return torch_reference.ResNet(int(arch[len("resnet"):]), "none", classes)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    arch, seed, classes, size, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = build(arch, classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), os.path.join(out, "model.pth"))
    x = torch.randn(2, 3, size, size)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    write_safetensors(os.path.join(out, "io.safetensors"), [("x", x), ("logits", logits)])


if __name__ == "__main__":
    main()
