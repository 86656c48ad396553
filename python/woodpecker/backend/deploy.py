"""Saving a `CompiledModel` for deployment: its object code linked into a shared library, with
its weights and manifest (the format: woodpecker.runtime.cpu.deploy, which also loads it)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from woodpecker.libs.emit import library_paths
from woodpecker.runtime.cpu.deploy import INTERFACE_SYMBOL, CpuModelFiles, write_model
from woodpecker.runtime.cpu.library_calls import handle_symbol
from woodpecker.runtime.cpu.link import link_shared
from woodpecker.runtime.cpu.memref import ENTRY_SYMBOL
from woodpecker.runtime.shared_libs import openmp_runtime

if TYPE_CHECKING:
    from woodpecker.backend.model import CompiledModel


def save_compiled(model: CompiledModel, directory: str | os.PathLike) -> Path:
    """Writes `model` into `directory` (model.so, weights.npy, manifest.json); returns it."""
    executable = model.executable
    calls = executable.libraries
    runtime = (["openmp"] if executable.parallel else []) + sorted({kernel.library for kernel in calls})
    dependencies = [Path(p) for p in library_paths({kernel.library for kernel in calls})]
    omp = openmp_runtime() if executable.parallel else None
    if omp is not None:
        dependencies.insert(0, omp)
    exports = [ENTRY_SYMBOL, INTERFACE_SYMBOL] + [handle_symbol(kernel.kernel_name) for kernel in calls]
    files = CpuModelFiles(
        inputs=[(name, model.input_shapes[name]) for name in model.input_names],
        outputs=[(name, model.output_shapes[name]) for name in model.output_names],
        weights=executable.bound_weights,
        originals=executable.library_weights,
        library_calls=[kernel.spec for kernel in calls],
        libraries=runtime,
        threads=executable.threads,
        llvm_opt_level=executable.llvm_opt_level,
        arena_bytes=executable.arena.nbytes,
        arena_largest=executable.arena.largest_text(),
        input_dtypes=[np.dtype(model.input_dtypes.get(name, np.float32)).name for name in model.input_names],
        output_dtypes=[np.dtype(model.output_dtypes.get(name, np.float32)).name for name in model.output_names],
    )
    with tempfile.TemporaryDirectory(prefix="wpk-save-") as scratch:
        obj, library = Path(scratch) / "model.o", Path(scratch) / "model.so"
        obj.write_bytes(executable.object_code())
        link_shared(obj, library, exports, dependencies)
        return write_model(directory, files, library)
