#!/usr/bin/env python3
"""Every #include follows the layer order tools -> app -> models, data -> host -> cuda.

Each folder may include only itself and the layers below it; a header found in a lower layer that
reaches back up fails here, naming the file, the line and the arrow it breaks.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1])
ALLOWED = {
    "cuda": {"cuda"},
    "host": {"host", "cuda"},
    "models": {"models", "host"},
    "data": {"data", "host"},
    "app": {"app", "models", "data", "host", "cuda"},
    "tools": {"tools", "app", "models", "data", "host", "cuda"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')

errors = []
checked = 0
for layer, allowed in ALLOWED.items():
    for path in sorted((ROOT / layer).rglob("*")):
        if path.suffix not in {".h", ".cpp", ".cu"}:
            continue
        checked += 1
        for no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if m and m.group(1) in ALLOWED and m.group(1) not in allowed:
                errors.append(f"{path.relative_to(ROOT)}:{no}: {layer}/ includes {m.group(1)}/ "
                              f"(allowed: {' '.join(sorted(allowed))})")
if checked < 50:
    sys.exit(f"layers_test: only {checked} sources found under {ROOT}; wrong root?")
for e in errors:
    print(e)
print(f"layers_test: {checked} files, {len(errors)} includes against the layer order")
sys.exit(1 if errors else 0)
