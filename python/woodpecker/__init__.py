"""Woodpecker (wpk): an MLIR-based deep-learning inference compiler driven from Python.

Pipeline: import (ONNX -> wpk) -> optimize -> lower (wpk -> linalg) -> schedule (transform
dialect, per-kernel knobs) -> codegen (LLVM; or PTX for target="cuda") -> run.
`woodpecker.load(directory)` runs a saved CPU model or CUDA plan without MLIR.
The public names are imported lazily so that `import woodpecker.dialect` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "compile": "woodpecker.compiler",
    "CompileOptions": "woodpecker.compiler",
    "CompiledModel": "woodpecker.backend.model",
    "import_onnx": "woodpecker.importer",
    "CompilationError": "woodpecker.errors",
    "InputError": "woodpecker.errors",
    "MemoryLimitError": "woodpecker.errors",
    "ModelLoadError": "woodpecker.errors",
    "ShapeError": "woodpecker.errors",
    "UnsupportedOperatorError": "woodpecker.errors",
    "WoodpeckerError": "woodpecker.errors",
    "InvalidConfigError": "woodpecker.kernels.space",
    "CpuOptions": "woodpecker.backend.cpu",
    "load": "woodpecker.runtime.load",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'woodpecker' has no attribute '{name}'")
