"""Choosing each kernel's implementation: measured, recorded, or by a stated heuristic.

For every kernel signature (`KernelTask.key`, shared with tuning) the candidates
(`select.candidates`) are measured with the tuning runners, side by side: the default
schedule first (the reference every candidate's output must match and the time the others
are relative to), then `rounds` rounds of every candidate, each timed in blocks alternating
with the default (`CpuMeasureOptions.pairs`); a candidate's time is its best round's. All
timings, failures and reasons go into the kernel's study in the tuning storage (user
attribute `selection`), so a second compile reads them instead of measuring, and the
report shows why each choice was made.

Modes: "measure" (use what is recorded, measure what is missing), "records" (use what is
recorded, else the heuristic), "heuristic" (never measure or read: `HEURISTIC` below).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from woodpecker.kernels.task import KernelTask, Runner
from woodpecker.libs.replace import GENERATED
from woodpecker.select.candidates import DEFAULT, Candidate, kernel_candidates

SELECTION_ATTR = "selection"
MODES = ("measure", "records", "heuristic")
# The stated heuristic, from the measurements in docs/libraries.md (AVX2, 2 cores, ResNet-18/50
# and MobileNetV2 at batch 1): oneDNN won 27 of 34 ResNet convolutions (up to 5.8x) and most of
# MobileNetV2's; our kernels won every stride-1 convolution with >= 56x56 outputs (the wide, shallow
# early layers, up to 1.7x), every stride-1 depthwise convolution (up to 2.2x) and the pooling
# (oneDNN's plain-layout pooling was 19x slower on ResNet's max pooling).
HEURISTIC_ORDER = ("onednn", "blas", GENERATED)
# Below this, oneDNN's call and reorders cost more than our kernel (the bundled tiny ResNet's
# 1.2-MFLOP convolutions: 1.23x slower end to end with them on oneDNN).
SMALL_CONV_FLOPS = 1.5e6
HEURISTIC = (
    "the generated kernel for pooling, convolutions under 1.5 MFLOP, stride-1 convolutions with at least "
    "56x56 outputs and stride-1 depthwise convolutions; elsewhere oneDNN where it applies, else BLAS for "
    "matmuls, else the generated kernel (not measured)"
)


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
    config: dict[str, Any]  # what compile_cpu takes for these kernels
    how: str  # "measured" | "recorded" | "heuristic" | "only candidate"
    default_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["arg_shapes"] = [list(s) for s in self.arg_shapes]
        data["output_shape"] = list(self.output_shape)
        data["kernel_names"] = list(self.kernel_names)
        return data


@dataclass
class SelectOptions:
    libraries: tuple[str, ...]
    mode: str = "records"
    storage: str | None = None  # tuning storage URL or path (None: the default database)
    rounds: int = 2

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"selection mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")


@dataclass
class _Stored:
    """A selection read back from a study."""

    generated_config: dict[str, Any]
    default_seconds: float | None
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)


def _heuristic(task: KernelTask, candidates: Sequence[Candidate]) -> Candidate:
    by_impl = {c.impl: c for c in candidates if c.applicable}
    if GENERATED in by_impl and _generated_wins(task):
        return by_impl[GENERATED]
    return next(by_impl[impl] for impl in HEURISTIC_ORDER if impl in by_impl)


def _generated_wins(task: KernelTask) -> bool:
    """Where our kernels beat oneDNN in every measurement: pooling, small convolutions (a library
    call with its reorders costs more than they do), stride-1 convolutions with at least 56 x 56
    outputs, and stride-1 depthwise convolutions."""
    if task.kind == "pool" or (task.kind == "conv" and 0 < task.flops < SMALL_CONV_FLOPS):
        return True
    if task.kind not in ("conv", "depthwise_conv") or len(task.output_shape) != 4 or task.num_weights < 1:
        return False
    source = task.arg_shapes[0]
    kernel_h = task.arg_shapes[len(task.arg_shapes) - task.num_weights][-2]
    out_h, out_w = task.output_shape[2], task.output_shape[3]
    unit_stride = source[2] - kernel_h + 1 == out_h
    return unit_stride and (task.kind == "depthwise_conv" or out_h * out_w >= 56 * 56)


def _fastest(results: Sequence[CandidateResult]) -> CandidateResult:
    measured = [r for r in results if r.seconds is not None and math.isfinite(r.seconds)]
    if not measured:
        return next(r for r in results if r.impl == GENERATED)
    return min(measured, key=lambda r: r.seconds)


def _stored(study) -> _Stored | None:
    data = study.user_attrs.get(SELECTION_ATTR) if study is not None else None
    if not isinstance(data, dict) or not isinstance(data.get("candidates"), dict):
        return None
    return _Stored(dict(data.get("generated_config") or {}), data.get("default_seconds"), data["candidates"])


def _from_stored(stored: _Stored, candidates: Sequence[Candidate]) -> list[CandidateResult] | None:
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
        if not isinstance(entry, dict) or (entry.get("seconds") is None and not entry.get("error")):
            return None
        results.append(CandidateResult(candidate.impl, candidate.config, entry.get("seconds"), entry.get("error")))
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
            if not candidate.config and default_seconds is not None:
                samples[candidate.impl].append(default_seconds)  # the default is the reference itself
                continue
            (result,) = runner.measure(task, [candidate.config])
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


def _store(study, generated_config: dict, default_seconds: float | None, results: Sequence[CandidateResult]) -> None:
    entries = {
        r.impl: {"seconds": r.seconds, "error": r.error}
        for r in results
        if r.reason is None and (r.seconds is not None or r.error)
    }
    study.set_user_attr(
        SELECTION_ATTR,
        {"generated_config": generated_config, "default_seconds": default_seconds, "candidates": entries},
    )


def _study(storage, task: KernelTask, create: bool):
    import optuna

    from woodpecker.tune.tuner import open_study_for_records

    if storage is None:
        return None
    if not create:
        try:
            return optuna.load_study(study_name=task.key, storage=storage)
        except KeyError:
            return None
    return open_study_for_records(task, storage)


def select_implementations(
    tasks: Sequence[KernelTask],
    options: SelectOptions,
    generated_configs: dict[str, dict[str, Any]] | None = None,
    runner_factory: Callable[[], Runner] | None = None,
    on_task: Callable[[KernelTask, int, int], None] | None = None,
    *,
    candidates_for: Callable[[KernelTask, dict[str, Any] | None], list[Candidate]] | None = None,
    heuristic: Callable[[KernelTask, Sequence[Candidate]], Candidate] | None = None,
) -> list[KernelChoice]:
    """One choice per distinct task (by key), in the order of first appearance.

    generated_configs: key -> the generated kernel's configuration (a tuning record); others
    use the default schedule. runner_factory makes the runner when something must be measured.
    candidates_for(task, generated config) and heuristic(task, candidates) default to the CPU's
    (`kernel_candidates` with options.libraries, and `HEURISTIC`); the CUDA plan passes its own.
    """
    if candidates_for is None:

        def candidates_for(task: KernelTask, generated: dict[str, Any] | None) -> list[Candidate]:
            return kernel_candidates(task, options.libraries, generated)

    heuristic = heuristic or _heuristic
    from woodpecker.tune.storage import open_storage, storage_exists

    generated_configs = generated_configs or {}
    unique: dict[str, KernelTask] = {}
    for task in tasks:
        unique.setdefault(task.key, task)
    needs_storage = options.mode == "measure" or (options.mode == "records" and storage_exists(options.storage))
    storage = open_storage(options.storage) if needs_storage else None
    runner: Runner | None = None
    choices = []
    try:
        for position, task in enumerate(unique.values()):
            if on_task is not None:
                on_task(task, position, len(unique))
            candidates = candidates_for(task, generated_configs.get(task.key))
            applicable = [c for c in candidates if c.applicable]
            results = [CandidateResult(c.impl, c.config, reason=c.reason) for c in candidates]
            default_seconds = None
            if all(c.impl in (GENERATED, DEFAULT) for c in applicable):  # tuned vs default is the tuner's call
                chosen, how = applicable[0], "only candidate"
            elif options.mode == "heuristic":
                chosen, how = heuristic(task, candidates), "heuristic"
            else:
                study = _study(storage, task, create=options.mode == "measure")
                stored = _stored(study)
                recorded = _from_stored(stored, candidates) if stored is not None else None
                if recorded is not None:
                    results, default_seconds, how = recorded, stored.default_seconds, "recorded"
                    chosen = _by_impl(candidates, _fastest(results).impl)
                elif options.mode == "measure":
                    if runner is None:
                        runner = (runner_factory or _default_runner)()
                    results, default_seconds = measure_candidates(task, candidates, runner, options.rounds)
                    generated = generated_configs.get(task.key) or {}
                    _store(study, generated, default_seconds, results)
                    chosen, how = _by_impl(candidates, _fastest(results).impl), "measured"
                else:
                    chosen, how = heuristic(task, candidates), "heuristic"
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
                    config=dict(chosen.config),
                    how=how,
                    default_seconds=default_seconds,
                )
            )
    finally:
        close = getattr(runner, "close", None)
        if close is not None:
            close()
    return choices


def _by_impl(candidates: Sequence[Candidate], impl: str) -> Candidate:
    return next(c for c in candidates if c.impl == impl)


def _default_runner() -> Runner:
    from woodpecker.measure.cpu_runner import IsolatedCpuRunner

    return IsolatedCpuRunner()
