"""`woodpecker.load(directory)`: a saved CUDA plan as a runnable model, without MLIR.

`PlanModel` has the calling convention of `onnxruntime.InferenceSession` and of the CPU's
`CompiledModel`: `run(output_names, feeds) -> list[np.ndarray]`. The executor (device buffers,
kernels, library calls, the CUDA graph) is created on the first `run`, so a plan can be loaded,
inspected and saved again on a machine without a GPU; running it there raises `CudaUnavailable`
saying why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from woodpecker.runtime.cuda.plan import InferencePlan, PlanError
from woodpecker.runtime.feeds import InputSpec, check_feeds, check_output_names, static_specs


class PlanModel:
    """A CUDA inference plan and its weight block, run on device `device`."""

    target = "cuda"

    def __init__(self, plan: InferencePlan, weight_block: np.ndarray, device: int = 0):
        self.plan = plan
        self.weight_block = weight_block
        self.device = device
        self._executor: Any = None

    @classmethod
    def load(cls, directory: str | os.PathLike, device: int = 0) -> PlanModel:
        plan, block = InferencePlan.load(directory)
        return cls(plan, block, device)

    def save(self, directory: str | os.PathLike) -> Path:
        """Writes the plan (see woodpecker.runtime.cuda.plan) into `directory`."""
        return self.plan.save(directory, self.weight_block)

    @property
    def arch(self) -> str:
        return self.plan.arch

    @property
    def input_names(self) -> list[str]:
        return self.plan.input_names

    @property
    def output_names(self) -> list[str]:
        return self.plan.output_names

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.plan.input_shapes()

    @property
    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.plan.output_shapes()

    @property
    def executor(self) -> Any:
        """The `PlanExecutor` (created on first use: needs a GPU)."""
        if self._executor is None:
            from woodpecker.runtime.cuda.executor import PlanExecutor

            self._executor = PlanExecutor(self.plan, self.weight_block, self.device)
        return self._executor

    @cached_property
    def input_specs(self) -> list[InputSpec]:
        """What `run` checks the feeds against (computed once, not per run)."""
        return static_specs(self.input_names, self.input_shapes)

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        wanted = check_output_names(output_names, self.output_names)
        arrays = check_feeds(feeds, self.input_specs)
        results = self.executor.run(dict(zip(self.input_names, arrays, strict=True)))
        return [results[name] for name in wanted]

    __call__ = run

    def summary(self) -> dict[str, Any]:
        """Steps per implementation, memory, and how each choice was made (no GPU needed)."""
        impls: dict[str, int] = {}
        hows: dict[str, int] = {}
        for step in self.plan.steps:
            impls[step.impl] = impls.get(step.impl, 0) + 1
            hows[step.how] = hows.get(step.how, 0) + 1
        return {
            "arch": self.plan.arch,
            "steps": len(self.plan.steps),
            "implementations": impls,
            "how": hows,
            "arena_bytes": self.plan.arena_bytes,
            "activation_bytes_without_reuse": self.plan.memory.get("total_bytes"),
            "peak_live_bytes": self.plan.memory.get("peak_bytes"),
            "weight_bytes": self.plan.weight_bytes,
        }

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None


def load(directory: str | os.PathLike, device: int = 0) -> PlanModel:
    """A plan saved by `CudaModel.save` / `wpk compile --target cuda -o DIR` (no MLIR needed)."""
    path = Path(directory)
    if not path.is_dir():
        raise PlanError(f"{path}: no such plan directory")
    return PlanModel.load(path, device)
