#!/usr/bin/env python3
"""Reference for tests/host/optim_test.cpp: prints the parameters after 3 steps of torch's SGD
(momentum, Nesterov, weight decay) and AdamW from the same start and gradients, one line each."""
import torch

w0 = torch.tensor([0.5, -1.25, 2.0, -0.125])
grads = [torch.tensor([0.1, -0.2, 0.3, 0.0]), torch.tensor([-0.05, 0.4, 0.1, 0.2]), torch.tensor([0.3, 0.3, -0.3, -0.1])]
for name, make in [
    ("sgd", lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-3)),
    ("nesterov", lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    ("adamw", lambda p: torch.optim.AdamW([p], lr=1e-2, weight_decay=1e-2)),
]:
    p = torch.nn.Parameter(w0.clone())
    opt = make(p)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    print(name, " ".join(f"{v:.9e}" for v in p.detach().tolist()))
