"""A kernel task as the tuning database stores it: `workload_of(task)` is its `Workload`.

A workload is one kernel signature (`KernelTask.key`) with its standalone module and what
describes it. The model kernels it stands for (`KernelTask.model_kernels`) are left out: they
belong to one model, and a signature is shared by every model that has it.
"""

from __future__ import annotations

from collections.abc import Iterable

from woodpecker.database import Workload
from woodpecker.kernels.task import KernelTask


def workload_of(task: KernelTask) -> Workload:
    """The database's workload of `task`."""
    return Workload(
        key=task.key,
        target=task.target,
        device=task.device,
        kind=task.kind,
        template=task.template,
        description=task.description,
        flops=task.flops,
        arg_shapes=task.arg_shapes,
        output_shape=task.output_shape,
        num_weights=task.num_weights,
        kernel_name=task.kernel_name,
        module_text=task.module_text,
    )


def workloads_of(tasks: Iterable[KernelTask]) -> list[Workload]:
    """One workload per distinct task key, in order of first appearance."""
    unique: dict[str, KernelTask] = {}
    for task in tasks:
        unique.setdefault(task.key, task)
    return [workload_of(task) for task in unique.values()]
