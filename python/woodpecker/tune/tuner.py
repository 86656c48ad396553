"""The search over every task: per kernel signature, claimed trials in the tuning database.

For each task the tuner registers its workload in the database (`woodpecker.database`),
measures the default configuration first (its output is the reference a candidate must match,
and its time is what speedups are relative to), then asks the strategy for candidates until the
workload holds `trials` trials (`woodpecker.tune.search`) or the time budget is spent, and
confirms the best few (`woodpecker.tune.confirm`):

* `ga`: our `GeneticSampler`; it repairs invalid children and never proposes a visited one;
* `tpe`: Optuna's TPESampler; an invalid proposal is repaired to the nearest valid
  configuration (`SearchSpace.repair`), which is what gets measured and recorded;
* `random`: uniform over the valid configurations (rejection sampling), the baseline;
* `rl`: our `ReinforceSampler`, a policy-gradient agent (one softmax per knob, REINFORCE
  updates from batches of measured trials), the seed paper's second search method.

The samplers run on an in-memory Optuna study per workload that mirrors the database
(`woodpecker.tune.study`). Every configuration is claimed in the database before it is
measured and finished there at once, so a killed run loses at most what it was measuring (run
the same command again and it goes on), and several processes (on several machines with
PostgreSQL) may tune one database together: they share each workload's budget, and none
measures a configuration another has.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from woodpecker.database import TuningDatabase, Workload, open_database
from woodpecker.kernels.space import Config, SearchSpace
from woodpecker.kernels.task import KernelTask, MeasureResult, Runner
from woodpecker.tune.confirm import confirm
from woodpecker.tune.search import search
from woodpecker.tune.study import SearchStudy, make_sampler, population_size

STRATEGIES = ("ga", "tpe", "random", "rl")


@dataclass
class TuneOptions:
    """How long and how to search each kernel."""

    trials: int = 32  # the trial budget of each kernel's workload (the default's included)
    strategy: str = "ga"
    seed: int | None = None
    time_budget_s: float | None = None  # for all kernels together; None: no limit
    storage: str | None = None  # the tuning database: path or URL; None: the default (woodpecker.database)
    # After the search: re-measure the best `confirm_top` and the default, `confirm_rounds`
    # times interleaved, and record the confirmed fastest (woodpecker.tune.confirm).
    confirm_top: int = 3
    confirm_rounds: int = 3

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy '{self.strategy}'; strategies: {', '.join(STRATEGIES)}")
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        if self.confirm_top < 0 or self.confirm_rounds < 0:
            raise ValueError("confirm_top and confirm_rounds must be >= 0")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time budget must be > 0 seconds, got {self.time_budget_s}")


@dataclass
class TuneResult:
    """What tuning one kernel (signature) gave."""

    task: KernelTask
    default_seconds: float | None
    best_seconds: float | None
    best_config: Config | None
    trials: int  # finished trials of the workload (every worker's)
    failures: int
    measured: int  # candidates measured by this run

    @property
    def speedup(self) -> float | None:
        if not self.default_seconds or not self.best_seconds:
            return None
        return self.default_seconds / self.best_seconds


@dataclass
class Progress:
    """Callbacks for progress display (woodpecker.cli.tune draws tqdm bars with them)."""

    on_task_start: Callable[[KernelTask, int, int], None] = lambda task, done, total: None
    on_trial: Callable[[KernelTask, MeasureResult | None, int], None] = lambda task, result, done: None
    on_task_end: Callable[[TuneResult], None] = lambda result: None


class TuningInterrupted(KeyboardInterrupt):
    """Ctrl-C during tuning: the open claim was released; what was finished is in the database.

    `results`: the kernels finished before the interruption; `current`: the record of the kernel
    being tuned then, read back from the database (None when it could not be read)."""

    def __init__(
        self,
        location: str,
        measured: int,
        results: list[TuneResult],
        current: TuneResult | None = None,
        tasks: int = 0,
    ) -> None:
        self.location = location
        self.measured = measured  # finished trials this run measured (the interrupted one not counted)
        self.results = results
        self.current = current
        self.tasks = tasks or len(results)
        super().__init__(self.summary())

    def summary(self) -> str:
        """One line: the trials kept, where, the kernels finished, and the best time so far."""
        line = (
            f"{self.measured} trials measured by this run are kept in {self.location} "
            f"({len(self.results)} of {self.tasks} kernels finished)"
        )
        known = [r for r in [self.current, *reversed(self.results)] if r is not None and r.best_seconds]
        if not known:
            return line + "; no trial finished yet"
        best = known[0]
        line += f"; best so far for {best.task.description[:60]}: {best.best_seconds * 1e3:.4f} ms"
        if best.speedup:
            line += f" ({best.speedup:.2f}x its default)"
        return line


def open_search(db: TuningDatabase, task: KernelTask, space: SearchSpace, options: TuneOptions) -> SearchStudy:
    """The sampler study of `task`'s workload, synced with the database."""
    return SearchStudy.open(db, task, space, options.strategy, options.seed, options.trials)


def tune_tasks(
    tasks: Sequence[tuple[KernelTask, SearchSpace]],
    runner: Runner,
    options: TuneOptions,
    progress: Progress | None = None,
) -> list[TuneResult]:
    """Tunes each (task, space) in turn; returns one result per task. Ctrl-C raises
    `TuningInterrupted` (a KeyboardInterrupt) once the open claim is released."""
    progress = progress or Progress()
    deadline = None if options.time_budget_s is None else time.monotonic() + options.time_budget_s
    results: list[TuneResult] = []
    measured = 0
    with open_database(options.storage) as db:
        try:
            db.add_workloads(Workload.of_task(task) for task, _ in tasks)
            for position, (task, space) in enumerate(tasks):
                progress.on_task_start(task, position, len(tasks))
                task_deadline = None
                if deadline is not None:
                    remaining = max(0.0, deadline - time.monotonic())
                    task_deadline = time.monotonic() + remaining / (len(tasks) - position)

                def on_trial(result: MeasureResult, finished: int, task: KernelTask = task) -> None:
                    nonlocal measured
                    measured += 1
                    progress.on_trial(task, result, finished)

                state = open_search(db, task, space, options)
                outcome = search(state, runner, options.trials, random.Random(options.seed), task_deadline, on_trial)
                confirm(db, task, runner, options.confirm_top, options.confirm_rounds)
                result = summarize_task(db, task, outcome.measured)
                progress.on_task_end(result)
                results.append(result)
        except KeyboardInterrupt:
            current = None
            if len(results) < len(tasks):
                with contextlib.suppress(Exception, KeyboardInterrupt):  # a second Ctrl-C: no summary of it
                    current = summarize_task(db, tasks[len(results)][0])
            raise TuningInterrupted(db.location, measured, results, current, len(tasks)) from None
    return results


def summarize_task(db: TuningDatabase, task: KernelTask, measured: int = 0) -> TuneResult:
    """The workload's record: the default's and the chosen configuration's (confirmed) times."""
    record = db.records([task.key]).get(task.key)
    if record is None:
        counts = db.counts([task.key]).get(task.key)
        finished = counts.finished if counts is not None else 0
        failures = counts.failed if counts is not None else 0
        return TuneResult(task, None, None, None, finished, failures, measured)
    return TuneResult(
        task=task,
        default_seconds=record.default_seconds,
        best_seconds=record.seconds,
        best_config=dict(record.config),
        trials=record.trials,
        failures=record.failures,
        measured=measured,
    )


__all__ = [
    "STRATEGIES",
    "Progress",
    "TuneOptions",
    "TuneResult",
    "TuningInterrupted",
    "make_sampler",
    "open_search",
    "population_size",
    "summarize_task",
    "tune_tasks",
]
