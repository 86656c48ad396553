"""A `KernelTask` as JSON: what a measurement batch (batch.json) and the CPU tuning worker's
requests carry. Reading checks every field (`woodpecker.runtime.bundle`), so a malformed task is
the caller's one-line error, never a TypeError from the dataclass. No MLIR here."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from woodpecker.kernels.task import KernelTask
from woodpecker.runtime import bundle

_TEXT_FIELDS = ("key", "description", "kind", "template", "target", "device", "module_text", "kernel_name")
_FIELDS = {*_TEXT_FIELDS, "num_weights", "arg_shapes", "output_shape", "flops", "model_kernels"}


def task_to_json(task: KernelTask) -> dict[str, Any]:
    data = asdict(task)
    data["arg_shapes"] = [list(s) for s in task.arg_shapes]
    data["output_shape"] = list(task.output_shape)
    data["model_kernels"] = list(task.model_kernels)
    return data


def task_from_json(data: Any, error: type[Exception], where: str = "task") -> KernelTask:
    """The task `task_to_json` wrote; `error` naming `where` and the field when it is malformed."""
    if not isinstance(data, dict):
        raise error(f"{where}: {type(data).__name__}, not a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise error(f"{where}: unknown fields {unknown}")
    names = data.get("model_kernels", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise error(f"{where}: model_kernels must be a list of names")
    arg_shapes = bundle.field(data, "arg_shapes", list, error, where)
    return KernelTask(
        **{key: bundle.text_field(data, key, error, where) for key in _TEXT_FIELDS},
        num_weights=bundle.integer(data.get("num_weights"), error, f"{where}.num_weights", maximum=len(arg_shapes)),
        arg_shapes=tuple(bundle.integers(s, error, f"{where}.arg_shapes[{i}]") for i, s in enumerate(arg_shapes)),
        output_shape=bundle.integers(data.get("output_shape"), error, f"{where}.output_shape"),
        flops=bundle.integer(data.get("flops", 0), error, f"{where}.flops", maximum=1 << 60),
        model_kernels=tuple(names),
    )
