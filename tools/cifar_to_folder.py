#!/usr/bin/python3
"""Writes CIFAR-10 binary files as PNGs in the ImageNet folder layout (standard library only).

    cifar_to_folder.py CIFAR_DIR OUT [--limit N]

reads CIFAR_DIR/data_batch_*.bin (train) and CIFAR_DIR/test_batch.bin (val), one record being a
label byte then 3,072 pixel bytes (red, green, blue 32x32 planes), and writes
OUT/train/<class>/<n>.png and OUT/val/<class>/<n>.png, n counting records across the split's
files from 0 (zero-padded so names sort in record order). Class names come from
batches.meta.txt when present, else the standard CIFAR-10 names; they are in alphabetical order,
so the folder reader's class indices (sorted folder names) are CIFAR's labels.
"""
import argparse
import glob
import os
import struct
import sys
import zlib

RECORD = 1 + 3 * 32 * 32
SIDE = 32
DEFAULT_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def png_bytes(width, height, rgb_rows):
    """An 8-bit RGB PNG; rgb_rows holds one bytes object of width * 3 per row."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rgb_rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def record_png(record):
    plane = SIDE * SIDE
    r, g, b = record[1:1 + plane], record[1 + plane:1 + 2 * plane], record[1 + 2 * plane:1 + 3 * plane]
    rows = []
    for y in range(SIDE):
        row = bytearray(3 * SIDE)
        s = y * SIDE
        row[0::3], row[1::3], row[2::3] = r[s:s + SIDE], g[s:s + SIDE], b[s:s + SIDE]
        rows.append(bytes(row))
    return png_bytes(SIDE, SIDE, rows)


def class_names(cifar_dir):
    path = os.path.join(cifar_dir, "batches.meta.txt")
    if not os.path.exists(path):
        return DEFAULT_CLASSES
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if len(names) != 10:
        sys.exit(f"{path}: {len(names)} class names, expected 10")
    for n in names:
        if "/" in n or n in (".", ".."):
            sys.exit(f"{path}: class name {n!r} cannot be a folder name")
    return names


def convert(files, out_dir, names, limit):
    """Writes the records of `files` in order; returns how many were written."""
    count = 0
    records = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        if not data or len(data) % RECORD:
            sys.exit(f"{path}: {len(data)} bytes is not a whole number of CIFAR-10 records of {RECORD} bytes")
        for k in range(len(data) // RECORD):
            label = data[k * RECORD]
            if label >= 10:
                sys.exit(f"{path}: record {k}: label {label} >= 10")
            records.append(data[k * RECORD:(k + 1) * RECORD])
    if limit > 0:
        records = records[:limit]
    width = max(5, len(str(max(len(records) - 1, 0))))
    # Only classes with images get a folder: an empty class folder is an error for the reader.
    for label in sorted({rec[0] for rec in records}):
        os.makedirs(os.path.join(out_dir, names[label]), exist_ok=True)
    missing = [names[c] for c in range(10) if c not in {rec[0] for rec in records}]
    if missing:
        print(f"{out_dir}: no images of {', '.join(missing)}: the folder's class indices will not be CIFAR's",
              file=sys.stderr)
    for n, rec in enumerate(records):
        path = os.path.join(out_dir, names[rec[0]], f"{n:0{width}d}.png")
        with open(path, "wb") as f:
            f.write(record_png(rec))
        count += 1
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cifar_dir", help="folder holding data_batch_*.bin and test_batch.bin")
    ap.add_argument("out", help="output folder (gets train/ and val/)")
    ap.add_argument("--limit", type=int, default=0, help="keep the first N records of each split (0: all)")
    args = ap.parse_args()
    train = sorted(glob.glob(os.path.join(args.cifar_dir, "data_batch_*.bin")))
    test = os.path.join(args.cifar_dir, "test_batch.bin")
    if not train:
        sys.exit(f"{args.cifar_dir}: no data_batch_*.bin files")
    if not os.path.exists(test):
        sys.exit(f"{test}: no such file")
    names = class_names(args.cifar_dir)
    n_train = convert(train, os.path.join(args.out, "train"), names, args.limit)
    n_val = convert([test], os.path.join(args.out, "val"), names, args.limit)
    print(f"{args.out}: {n_train} train and {n_val} val images")


if __name__ == "__main__":
    main()
