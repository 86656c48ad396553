"""`CompiledModel`: a model compiled for the CPU, with the calling conventions of onnxruntime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from woodpecker.backend.cpu import CpuExecutable
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
    # Per kernel signature: the candidates (generated, oneDNN, BLAS), their times and the
    # choice (woodpecker.select.selection.KernelChoice); empty with libraries="none".
    selection: list = field(default_factory=list)

    def run(
        self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]
    ) -> list[np.ndarray]:
        wanted = list(self.output_names if output_names is None else output_names)
        for name in wanted:
            if name not in self.output_names:
                raise ValueError(f"unknown output name '{name}'; outputs are {self.output_names}")
        inputs = self._check_feeds(feeds)
        results = dict(zip(self.output_names, self.executable(inputs), strict=True))
        return [results[name] for name in wanted]

    __call__ = run

    def _check_feeds(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        unknown = sorted(set(feeds) - set(self.input_names))
        if unknown:
            raise ValueError(f"unknown input name '{unknown[0]}'; inputs are {self.input_names}")
        arrays = []
        for name in self.input_names:
            if name not in feeds:
                raise ValueError(f"missing input '{name}'; inputs are {self.input_names}")
            value = np.asarray(feeds[name])
            if value.dtype != np.float32:
                raise ValueError(f"input '{name}' has dtype {value.dtype}; expected float32")
            expected = self.input_shapes[name]
            if tuple(value.shape) != expected:
                raise ValueError(
                    f"input '{name}' has shape {tuple(value.shape)}; expected {expected}"
                )
            arrays.append(np.ascontiguousarray(value))
        return arrays
