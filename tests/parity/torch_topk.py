#!/usr/bin/env python3
"""Reference for tests/cpu/topk_torch_parity_test.cpp. For each pair of arguments IN OUT, reads
IN: int32 n, int32 k, n*k float32 logits, n int32 labels (little-endian), and writes OUT: four
bytes per row, 1 or 0:
  argmax == label;  label in topk(min(5, k)) indices;  label in the first min(5, k) of
  sort(descending=True, stable=True);  topk's answer is ambiguous for this row (the label's logit
  ties, NaN with NaN, with both the fifth and the sixth largest, and topk breaks such ties its own way).
"""
import struct
import sys

import torch



def same(a, b):
    return (a == b) | (torch.isnan(a) & torch.isnan(b))


def answer(src, dst):
    data = open(src, "rb").read()
    n, k = struct.unpack_from("<ii", data, 0)
    z = torch.frombuffer(bytearray(data[8:8 + 4 * n * k]), dtype=torch.float32).reshape(n, k)
    y = torch.frombuffer(bytearray(data[8 + 4 * n * k:8 + 4 * n * k + 4 * n]), dtype=torch.int32).long()
    m = min(5, k)
    top1 = z.argmax(1) == y
    top5 = (z.topk(m, 1).indices == y[:, None]).any(1)
    order = z.sort(dim=1, descending=True, stable=True)
    stable5 = (order.indices[:, :m] == y[:, None]).any(1)
    ambiguous = torch.zeros(n, dtype=torch.bool)
    if k > 5:
        v = z.gather(1, y[:, None]).squeeze(1)
        ambiguous = same(order.values[:, 4], order.values[:, 5]) & same(v, order.values[:, 4])
    out = torch.stack([top1, top5, stable5, ambiguous], 1).to(torch.uint8)
    open(dst, "wb").write(bytes(out.flatten().tolist()))


for i in range(1, len(sys.argv), 2):
    answer(sys.argv[i], sys.argv[i + 1])
