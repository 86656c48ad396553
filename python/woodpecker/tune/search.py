"""One worker's search of one workload: claim, measure, finish, until the budget is spent.

    default first (claimed with is_default) -> loop:
        sync the database's new trials into the sampler study -> propose -> claim
        (refused: the configuration is another worker's, or the budget is full) -> measure
        -> finish -> tell the study

`budget` (`wpk tune --trials`) is the workload's: every claim counts against it, so several
workers on one database divide the work between them, none measures a configuration another
has, and together they stop at `budget` trials. A claim that is not finished (Ctrl-C, an
exception) is released before the error goes on; a killed worker's claims expire by
themselves (`woodpecker.database.liveness`); a measurement that outlived its claim's lease and
lost it to another worker is dropped (`ClaimLostError`), and the search goes on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from woodpecker.database import Claim, ClaimLostError, Trial, TuningDatabase
from woodpecker.kernels.task import KernelTask, MeasureResult, Runner
from woodpecker.tune.study import SearchStudy

OnTrial = Callable[[MeasureResult, int], None]  # (result, finished trials of the workload)


@dataclass
class SearchOutcome:
    """What one worker's search of a workload did."""

    measured: int = 0  # candidates this worker measured
    stopped: str = "budget"  # "budget" | "exhausted" (no valid configuration left) | "time"


def measure_claim(
    db: TuningDatabase, claim: Claim, runner: Runner, task: KernelTask, default_seconds: float | None
) -> tuple[Trial, MeasureResult]:
    """Measures a claimed configuration and records it; the claim is released if that fails."""
    try:
        (result,) = runner.measure(task, [claim.config])
        seconds = result.value(default_seconds) if result.ok else None
        finished = db.finish(
            claim,
            seconds=seconds,
            times=result.times,
            error=result.error if not result.ok else None,
            relative=result.relative,
            compile_seconds=result.compile_seconds,
        )
    except BaseException:
        db.release(claim)
        raise
    return finished, result


def search(
    state: SearchStudy,
    runner: Runner,
    budget: int,
    rng: random.Random,
    deadline: float | None = None,
    on_trial: OnTrial | None = None,
) -> SearchOutcome:
    """Claims and measures configurations of `state`'s workload until it has `budget` trials
    (this worker's and the others'), nothing valid is left, or `deadline` (monotonic) passed."""
    db, task = state.db, state.task
    outcome = SearchOutcome()

    def run(claim: Claim, trial: optuna.Trial | None) -> None:
        default = None if claim.is_default else state.default_seconds
        finished, result = measure_claim(db, claim, runner, task, default)
        state.record(finished, result, trial)
        outcome.measured += 1
        if on_trial is not None:
            on_trial(result, state.finished)

    if not state.has_default:  # the default first: the reference of every candidate's output
        claim = db.claim(task.key, state.space.default, strategy="default", budget=budget, is_default=True)
        if claim is None:
            state.refused(state.space.default, None)
        else:
            run(claim, None)
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            outcome.stopped = "time"
            return outcome
        state.sync()
        config, trial = state.propose(rng)
        if config is None:
            outcome.stopped = "exhausted"
            return outcome
        claim = db.claim(task.key, config, strategy=state.strategy, budget=budget)
        if claim is None:
            if db.counts([task.key])[task.key].total >= budget:
                state.abandon(trial)
                return outcome
            state.refused(config, trial)  # another worker's configuration
            continue
        try:
            run(claim, trial)
        except ClaimLostError:  # measured past its lease and taken over: that result is not kept
            state.refused(config, trial)
