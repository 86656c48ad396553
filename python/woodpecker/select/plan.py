"""The CPU kernel plan of a model: per kernel, its tuning record and its chosen implementation.

`cpu_plan` is what `woodpecker.compile(target="cpu")` runs between lowering and code
generation: it cuts the kernels out (woodpecker.tune.extract), reads each signature's best
tuning record, chooses between that generated kernel and the library candidates
(woodpecker.select.selection), and returns the configurations `compile_cpu` takes by kernel
name. Kernels the caller configured explicitly (by name or kind) keep their configuration
and are not selected.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlir import ir

from woodpecker.backend.cpu import CpuOptions, thread_count
from woodpecker.kernels.task import Runner
from woodpecker.libs.match import LIBRARIES
from woodpecker.select.candidates import library_availability
from woodpecker.select.selection import KernelChoice, SelectOptions, select_implementations


@dataclass
class CpuPlan:
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)  # kernel name -> configuration
    choices: list[KernelChoice] = field(default_factory=list)
    tuned_kernels: int = 0  # kernels of the model using a tuning record
    library_kernels: int = 0  # kernels of the model the selection gave to a library
    unavailable: dict[str, str] = field(default_factory=dict)  # library -> why it was not used


def available_libraries(libraries: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the libraries that load here, library -> reason for those that do not)."""
    usable, missing = [], {}
    for library in libraries:
        reason = library_availability(library)
        if reason is None:
            usable.append(library)
        else:
            missing[library] = reason
    return tuple(usable), missing


def cpu_plan(
    module: ir.Module,
    num_weights: int,
    cpu: CpuOptions,
    libraries: Sequence[str],
    mode: str = "records",
    use_records: bool = True,
    storage: str | None = None,
    runner_factory: Callable[[], Runner] | None = None,
) -> CpuPlan:
    """Records and implementation choices for the kernels of `module` (left unchanged)."""
    from woodpecker.schedule.target import CpuTarget
    from woodpecker.tune.records import has_cpu_records, record_configs

    usable, missing = available_libraries(libraries)
    for library, reason in missing.items():
        warnings.warn(f"{library} is not used: {reason}; compiling with generated code for its kernels", stacklevel=3)
    read_records = use_records and has_cpu_records(storage)
    if not usable and not read_records:
        return CpuPlan(unavailable=missing)
    from woodpecker.tune.extract import cpu_tasks

    extracted = cpu_tasks(module, num_weights, CpuTarget.host(threads=thread_count(cpu.threads, cpu.parallel)))
    explicit = set(cpu.schedules or {})
    chosen = [e for e in extracted if e.kernel_name not in explicit and e.task.kind not in explicit]
    records = record_configs(chosen, storage) if read_records else {}
    plan = CpuPlan(unavailable=missing)
    if not usable:
        for item in chosen:
            if item.task.key in records:
                plan.schedules[item.kernel_name] = records[item.task.key]
                plan.tuned_kernels += 1
        return plan
    if runner_factory is None:
        runner_factory = _runner_factory(cpu)
    options = SelectOptions(libraries=usable, mode=mode, storage=storage)
    plan.choices = select_implementations([e.task for e in chosen], options, records, runner_factory)
    by_key = {choice.key: choice for choice in plan.choices}
    for item in chosen:
        choice = by_key[item.task.key]
        if choice.config:
            plan.schedules[item.kernel_name] = choice.config
        if choice.choice == "generated" and item.task.key in records:
            plan.tuned_kernels += 1
        elif choice.choice in LIBRARIES:
            plan.library_kernels += 1
    return plan


def _runner_factory(cpu: CpuOptions) -> Callable[[], Runner]:
    def make() -> Runner:
        from woodpecker.measure.cpu_runner import CpuMeasureOptions, IsolatedCpuRunner

        return IsolatedCpuRunner(
            CpuMeasureOptions(parallel=cpu.parallel, threads=cpu.threads, llvm_opt_level=cpu.llvm_opt_level)
        )

    return make
