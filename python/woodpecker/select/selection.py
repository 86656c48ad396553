"""Choosing each kernel's implementation: measured, recorded, or by a stated heuristic.

For every kernel signature (`KernelTask.key`, shared with tuning) the candidates
(`select.candidates`) are measured with the tuning runners, side by side: the default
schedule first (the reference every candidate's output must match and the time the others
are relative to), then `rounds` rounds of every candidate, each timed in blocks alternating
with the default (`CpuMeasureOptions.pairs`); a candidate's time is its best round's. All
timings and failures go into the tuning database as the workload's `Selection`
(`TuningDatabase.put_selection`), so a second compile reads them (one batched `selections`
read for all the kernels) instead of measuring, and the report shows why each choice was made.

Modes: "measure" (use what is recorded, measure what is missing), "records" (use what is
recorded, else the heuristic), "heuristic" (never measure or read: the target's stated rule,
`Target.heuristic`). The candidates, the heuristic and the runner come from the target, so the
CPU and CUDA plans are chosen by the same code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from woodpecker.database import CandidateTiming, Selection, Workload, database_exists, open_database
from woodpecker.kernels.decision import DEFAULT, GENERATED, Decision, config_of
from woodpecker.kernels.target import Candidate, Target
from woodpecker.kernels.task import KernelTask, Runner
from woodpecker.select.candidates import kernel_candidates

MODES = ("measure", "records", "heuristic")


@dataclass
class CandidateResult:
    impl: str
    config: dict[str, Any]
    seconds: float | None = None  # best round, relative to the default's time in the same run
    error: str | None = None  # measured and failed (wrong output, crash, compile error)
    reason: str | None = None  # not applicable / not installed: never measured


@dataclass
class KernelChoice:
    """The implementation chosen for one kernel signature, and why."""

    key: str
    description: str
    kind: str
    kernel_names: tuple[str, ...]  # the model's kernels with this signature
    arg_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    candidates: list[CandidateResult]
    choice: str
    config: dict[str, Any]  # the generated kernel's configuration ({} for a library call)
    how: str  # "measured" | "recorded" | "heuristic" | "only candidate"
    default_seconds: float | None = None
    decision: Decision | None = field(default=None, compare=False)  # what code generation is told

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("decision", None)
        data["arg_shapes"] = [list(s) for s in self.arg_shapes]
        data["output_shape"] = list(self.output_shape)
        data["kernel_names"] = list(self.kernel_names)
        return data


@dataclass
class SelectOptions:
    libraries: tuple[str, ...]
    mode: str = "records"
    storage: str | None = None  # the tuning database: path or URL (None: the default one)
    rounds: int = 2

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"selection mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")


def _fastest(results: Sequence[CandidateResult]) -> CandidateResult:
    measured = [r for r in results if r.seconds is not None and math.isfinite(r.seconds)]
    if not measured:
        return next(r for r in results if r.impl == GENERATED)
    return min(measured, key=lambda r: r.seconds)


def _from_stored(stored: Selection, candidates: Sequence[Candidate]) -> list[CandidateResult] | None:
    """The stored results of `candidates`, or None when one applicable candidate is missing or
    the generated configuration changed since (a new tuning record)."""
    results = []
    for candidate in candidates:
        if not candidate.applicable:
            results.append(CandidateResult(candidate.impl, candidate.config, reason=candidate.reason))
            continue
        if candidate.impl == GENERATED and candidate.config != stored.generated_config:
            return None
        if candidate.impl == DEFAULT:
            results.append(CandidateResult(DEFAULT, {}, stored.default_seconds))
            continue
        entry = stored.candidates.get(candidate.impl)
        if entry is None or (entry.seconds is None and not entry.error):
            return None
        results.append(CandidateResult(candidate.impl, candidate.config, entry.seconds, entry.error))
    return results


def measure_candidates(
    task: KernelTask, candidates: Sequence[Candidate], runner: Runner, rounds: int
) -> tuple[list[CandidateResult], float | None]:
    """Times every applicable candidate with `runner` (the default schedule first); returns the
    results in the order of `candidates` and the default's seconds."""
    (default,) = runner.measure(task, [{}])
    default_seconds = default.seconds if default.ok else None
    samples: dict[str, list[float]] = {c.impl: [] for c in candidates}
    errors: dict[str, str] = {}
    for _ in range(rounds):
        for candidate in candidates:
            if not candidate.applicable or candidate.impl in errors:
                continue
            measured = config_of(candidate.decision)
            if not measured and default_seconds is not None:
                samples[candidate.impl].append(default_seconds)  # the default is the reference itself
                continue
            (result,) = runner.measure(task, [measured])
            if result.ok:
                samples[candidate.impl].append(result.value(default_seconds))
            else:
                errors[candidate.impl] = result.error or "failed"
    results = []
    for candidate in candidates:
        if not candidate.applicable:
            results.append(CandidateResult(candidate.impl, candidate.config, reason=candidate.reason))
        elif candidate.impl in errors:
            results.append(CandidateResult(candidate.impl, candidate.config, error=errors[candidate.impl]))
        else:
            values = samples[candidate.impl]
            results.append(CandidateResult(candidate.impl, candidate.config, min(values) if values else None))
    return results, default_seconds


def _selection(
    task: KernelTask, generated_config: dict, default_seconds: float | None, results: Sequence[CandidateResult]
) -> Selection:
    """What is stored of a measured selection: every measured candidate's time or error."""
    return Selection(
        key=task.key,
        generated_config=dict(generated_config),
        default_seconds=default_seconds,
        candidates={
            r.impl: CandidateTiming(r.seconds, r.error)
            for r in results
            if r.reason is None and (r.seconds is not None or r.error)
        },
    )


def stored_selections(storage: str | None, keys: Sequence[str]) -> dict[str, Selection]:
    """key -> its recorded selection, in one batched read ({} when the database does not exist)."""
    if not keys or not database_exists(storage):
        return {}
    with open_database(storage) as db:
        return db.selections(keys)


def _store(storage: str | None, task: KernelTask, selection: Selection) -> None:
    """Records one measured selection at once (a later failure keeps what was measured)."""
    with open_database(storage) as db:
        db.add_workloads([Workload.of_task(task)])
        db.put_selection(selection)


def select_implementations(
    tasks: Sequence[KernelTask],
    target: Target,
    options: SelectOptions,
    generated_configs: dict[str, dict[str, Any]] | None = None,
    runner_factory: Callable[[], Runner] | None = None,
    on_task: Callable[[KernelTask, int, int], None] | None = None,
) -> list[KernelChoice]:
    """One choice per distinct task (by key), in the order of first appearance.

    generated_configs: key -> the generated kernel's configuration (a tuning record); others
    use the default schedule. runner_factory makes the runner when something must be measured
    (default: the target's)."""
    generated_configs = generated_configs or {}
    unique: dict[str, KernelTask] = {}
    for task in tasks:
        unique.setdefault(task.key, task)
    stored: dict[str, Selection] = {}
    if options.mode != "heuristic":
        stored = stored_selections(options.storage, list(unique))
    runner: Runner | None = None
    choices = []
    try:
        for position, task in enumerate(unique.values()):
            if on_task is not None:
                on_task(task, position, len(unique))
            candidates = kernel_candidates(target, task, options.libraries, generated_configs.get(task.key))
            applicable = [c for c in candidates if c.applicable]
            results = [CandidateResult(c.impl, c.config, reason=c.reason) for c in candidates]
            default_seconds = None
            if all(c.impl in (GENERATED, DEFAULT) for c in applicable):  # tuned vs default is the tuner's call
                chosen, how = applicable[0], "only candidate"
            elif options.mode == "heuristic":
                chosen, how = target.heuristic(task, candidates), "heuristic"
            else:
                selection = stored.get(task.key)
                recorded = _from_stored(selection, candidates) if selection is not None else None
                if recorded is not None and selection is not None:
                    results, default_seconds, how = recorded, selection.default_seconds, "recorded"
                    chosen = _by_impl(candidates, _fastest(results).impl)
                elif options.mode == "measure":
                    if runner is None:
                        runner = (runner_factory or target.runner)()
                    results, default_seconds = measure_candidates(task, candidates, runner, options.rounds)
                    generated = generated_configs.get(task.key) or {}
                    _store(options.storage, task, _selection(task, generated, default_seconds, results))
                    chosen, how = _by_impl(candidates, _fastest(results).impl), "measured"
                else:
                    chosen, how = target.heuristic(task, candidates), "heuristic"
            choices.append(
                KernelChoice(
                    key=task.key,
                    description=task.description,
                    kind=task.kind,
                    kernel_names=task.model_kernels,
                    arg_shapes=task.arg_shapes,
                    output_shape=task.output_shape,
                    candidates=results,
                    choice=chosen.impl,
                    config=chosen.config,
                    how=how,
                    default_seconds=default_seconds,
                    decision=chosen.decision,
                )
            )
    finally:
        close = getattr(runner, "close", None)
        if close is not None:
            close()
    return choices


def _by_impl(candidates: Sequence[Candidate], impl: str) -> Candidate:
    return next(c for c in candidates if c.impl == impl)
