"""What the tuner works on: one kernel as a standalone task, and what measuring a candidate gave.

A `KernelTask` is one kernel cut out of a model (`woodpecker.schedule.tasks`): a module whose
`@main(inputs..., weights...)` computes only that kernel, plus its signature. Kernels with the
same signature (op kind, shapes, epilogue, dtype, target, device) share one Optuna study, so
repeated layers are tuned once and records are shared across models.

A `Runner` measures configurations of a task (`woodpecker.tune.runners`): it returns one
`MeasureResult` per configuration, in order, and never raises for a bad candidate: a
compile error, a crash, a timeout or a wrong output becomes `MeasureResult.error`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Config = dict[str, Any]


@dataclass(frozen=True)
class KernelTask:
    """One kernel to tune, standalone."""

    key: str  # the study name: readable prefix + signature hash, unique per signature
    description: str  # e.g. "conv 1x64x56x56 * 64x64x3x3 -> 1x64x56x56 +epilogue"
    kind: str  # matmul, conv, depthwise_conv, pool, reduction, elementwise
    template: str  # the schedule template, e.g. "cpu.conv", "cuda.matmul"
    target: str  # "cpu" | "cuda"
    device: str  # the hardware the times belong to, e.g. "AMD EPYC x2 threads", "sm_90"
    module_text: str  # linalg on tensors; @main(inputs..., weights...) -> the kernel's result
    num_weights: int  # the last `num_weights` arguments of @main are weights
    arg_shapes: tuple[tuple[int, ...], ...]  # every argument of @main, in order
    output_shape: tuple[int, ...]
    kernel_name: str  # the kernel's name inside module_text ("k0_conv"): the key of its config
    flops: int = 0  # multiply-adds count 2; 0 when unknown
    model_kernels: tuple[str, ...] = ()  # the names of the kernels of the model it stands for


@dataclass
class MeasureResult:
    """How one configuration of a task ran: seconds per repeat, or why it failed."""

    config: Config
    times: list[float] = field(default_factory=list)
    error: str | None = None
    compile_seconds: float = 0.0
    # Time relative to the default configuration's, measured alternately with it (CPU): robust
    # to the machine's speed changing; the tuner scales it by the default's recorded time.
    relative: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.times)

    @property
    def seconds(self) -> float:
        """The median time; infinity for a failed candidate."""
        return statistics.median(self.times) if self.ok else float("inf")

    def value(self, default_seconds: float | None) -> float:
        """The time to record: relative to the default's `default_seconds` when both are known,
        else the median."""
        if self.ok and self.relative is not None and default_seconds:
            return self.relative * default_seconds
        return self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "times": self.times,
            "error": self.error,
            "compile_seconds": self.compile_seconds,
            "relative": self.relative,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeasureResult:
        return cls(
            config=dict(data["config"]),
            times=[float(t) for t in data.get("times", [])],
            error=data.get("error"),
            compile_seconds=float(data.get("compile_seconds", 0.0)),
            relative=None if data.get("relative") is None else float(data["relative"]),
        )


class Runner(Protocol):
    """Measures candidate configurations of a task on real hardware."""

    def measure(self, task: KernelTask, configs: Sequence[Config]) -> list[MeasureResult]: ...

    def close(self) -> None: ...


def unique_tasks(tasks: Sequence[KernelTask]) -> list[KernelTask]:
    """One task per signature (key), in order of first appearance."""
    seen: dict[str, KernelTask] = {}
    for task in tasks:
        seen.setdefault(task.key, task)
    return list(seen.values())


def select_tasks(tasks: Sequence[KernelTask], kernels: Sequence[str] | None) -> list[KernelTask]:
    """The distinct tasks that stand for a model kernel named in `kernels` (`k3_conv`) or whose
    kind is (`conv`); all of them when `kernels` is empty. An unknown name is a ValueError."""
    if kernels:
        wanted = set(kernels)
        names = {name for task in tasks for name in task.model_kernels}
        unknown = sorted(wanted - names - {task.kind for task in tasks})
        if unknown:
            raise ValueError(
                f"'{unknown[0]}' names no kernel of the model and no kernel kind it has "
                f"(kernels: {', '.join(sorted(names))})"
            )
        tasks = [task for task in tasks if task.kind in wanted or wanted & set(task.model_kernels)]
    return unique_tasks(tasks)
