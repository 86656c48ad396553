"""The kernel plan of a model: per kernel, its tuning record and its chosen implementation.

`plan_kernels` is what `woodpecker.compile` runs between lowering and code generation, the
same for every target: it cuts the model into kernels (`Target.cut`), reads each signature's
best tuning record, chooses between that generated kernel and the library candidates
(`woodpecker.select.selection`), and returns one decision per kernel name,
`Generated(config) | Library(name, spec)`. Kernels the caller configured explicitly (by name
or kind) keep their configuration and are not selected.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from woodpecker.errors import CompilationError
from woodpecker.kernels.decision import Generated, Library
from woodpecker.kernels.target import Cut, Plan, Target
from woodpecker.kernels.task import Runner
from woodpecker.select.records import record_configs
from woodpecker.select.report import selection_report
from woodpecker.select.selection import SelectOptions, select_implementations


@dataclass(frozen=True)
class PlanRequest:
    """How to plan: the libraries that compete, how to choose, which records to read."""

    libraries: tuple[str, ...]
    mode: str = "records"  # "records" | "measure" | "heuristic"
    use_records: bool = True
    storage: str | None = None
    explicit: Collection[str] = ()  # kernel names and kinds the caller configured


def available_libraries(target: Target, libraries: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the libraries that can be called here, library -> reason for those that cannot)."""
    usable, missing = [], {}
    for library in libraries:
        reason = target.library_unavailable(library)
        if reason is None:
            usable.append(library)
        else:
            missing[library] = reason
    return tuple(usable), missing


def plan_kernels(
    target: Target,
    lowered,
    request: PlanRequest,
    runner_factory: Callable[[], Runner] | None = None,
) -> tuple[Cut | None, Plan]:
    """The cut of `lowered` (None when nothing needed it) and the decisions for its kernels."""
    usable, missing = available_libraries(target, request.libraries)
    for library, reason in missing.items():
        warnings.warn(f"{library} is not used: {reason}; compiling with generated code for its kernels", stacklevel=3)
    read_records = request.use_records and target.has_records(request.storage)
    mode = request.mode if request.use_records or request.mode == "measure" else "heuristic"
    if mode == "measure" and runner_factory is None:
        reason = target.measure_unavailable()
        if reason is not None:
            raise CompilationError(reason)
    plan = Plan(unavailable=missing, header=target.report_header(mode, usable))
    if not target.needs_cut(usable, read_records):
        plan.report = selection_report([], **plan.header)
        return None, plan
    cut = target.cut(lowered)
    chosen = [k for k in cut.kernels if k.name not in request.explicit and k.kind not in request.explicit]
    records = record_configs(chosen, request.storage) if read_records else {}
    plan.records = dict(records)
    if not usable:
        for kernel in chosen:
            if kernel.task.key in records:
                plan.decisions[kernel.name] = Generated(records[kernel.task.key])
                plan.tuned_kernels += 1
        plan.report = selection_report([], **plan.header)
        return cut, plan
    options = SelectOptions(libraries=usable, mode=mode, storage=request.storage)
    plan.choices = select_implementations(
        [k.task for k in chosen], target, options, records, runner_factory
    )
    by_key = {choice.key: choice for choice in plan.choices}
    for kernel in chosen:
        choice = by_key[kernel.task.key]
        decision = choice.decision if choice.decision is not None else Generated(choice.config)
        plan.decisions[kernel.name] = decision
        if isinstance(decision, Library):
            plan.library_kernels += 1
        elif decision.config and kernel.task.key in records:
            plan.tuned_kernels += 1
    plan.report = selection_report(plan.choices, **plan.header)
    return cut, plan
