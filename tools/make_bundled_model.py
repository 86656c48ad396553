#!/usr/bin/env python3
"""Writes python/woodpecker/models/tiny_resnet.onnx, the bundled demo model.

tiny_resnet(batch=1, image=64, channels=(8, 16), num_classes=10, opset=17, seed=0): deterministic,
so rerunning this script rewrites the same bytes. Usage: python tools/make_bundled_model.py [--check]
(--check: exit 1 if the committed file differs from what the builder produces now).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "python"))

import onnx  # noqa: E402

from woodpecker.models import bundled_model_path, tiny_resnet  # noqa: E402

MAX_BYTES = 2 * 1024 * 1024
CONFIG = {"batch": 1, "image": 64, "channels": (8, 16), "num_classes": 10, "opset": 17, "seed": 0}


def build() -> bytes:
    model = tiny_resnet(**CONFIG)
    model.doc_string = f"Woodpecker bundled demo model: tiny_resnet({CONFIG})"
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString(deterministic=True)
    if len(data) > MAX_BYTES:
        raise SystemExit(f"bundled model is {len(data)} bytes, over the {MAX_BYTES} byte limit")
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed file")
    args = parser.parse_args()
    path = bundled_model_path()
    data = build()
    if args.check:
        same = path.is_file() and path.read_bytes() == data
        print(f"{path}: {'up to date' if same else 'OUT OF DATE (run tools/make_bundled_model.py)'}")
        return 0 if same else 1
    path.write_bytes(data)
    print(f"wrote {path} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
