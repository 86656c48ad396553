"""`CompiledModel`: a model compiled for the CPU, with the calling conventions of onnxruntime."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from woodpecker.backend.cpu import CpuExecutable
from woodpecker.runtime.feeds import InputSpec, check_feeds, check_output_names, pick_outputs, static_specs
from woodpecker.stats import CompileStats


@dataclass
class CompiledModel:
    """Runs like `onnxruntime.InferenceSession`: `run(output_names, feeds) -> list[np.ndarray]`."""

    input_names: list[str]
    output_names: list[str]
    input_shapes: dict[str, tuple[int, ...]]
    output_shapes: dict[str, tuple[int, ...]]
    executable: CpuExecutable
    stats: CompileStats
    target: str = "cpu"
    # Numpy dtypes of the inputs and outputs by name (float32 where not named).
    input_dtypes: dict[str, np.dtype] = field(default_factory=dict)
    output_dtypes: dict[str, np.dtype] = field(default_factory=dict)
    # Per kernel signature: the candidates (generated, oneDNN, BLAS), their times and the
    # choice (woodpecker.select.selection.KernelChoice); empty with libraries="none".
    selection: list = field(default_factory=list)

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Like `onnxruntime.InferenceSession.run`; bad feeds or output names raise an
        `InputError` naming them (`woodpecker.runtime.feeds`, shared with the CUDA plans)."""
        wanted = check_output_names(output_names, self.output_names)
        inputs = check_feeds(feeds, self.input_specs)
        return pick_outputs(self.output_names, self.executable(inputs), None if output_names is None else wanted)

    __call__ = run

    @cached_property
    def input_specs(self) -> list[InputSpec]:
        """What `run` checks the feeds against (computed once, not per run)."""
        return static_specs(self.input_names, self.input_shapes, self.input_dtypes)

    def save(self, directory: str | os.PathLike) -> Path:
        """Writes the model as a deployable directory (a shared library, its weights and
        manifest.json; see woodpecker.runtime.cpu.deploy) that `woodpecker.load` runs without MLIR."""
        from woodpecker.backend.deploy import save_compiled

        return save_compiled(self, directory)
