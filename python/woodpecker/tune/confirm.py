"""Confirming the winners: re-measure the best few candidates and the default side by side.

A search keeps the lowest of many noisy measurements, so its best trial is biased towards a
lucky one (the winner's curse); on these VMs one configuration measured twice, compiled twice,
differed by up to 2.6x. After a kernel's search, `confirm` re-measures its `top` best complete
trials and the default configuration, interleaved, for `rounds` rounds, and writes the lowest
of each to the database (`TuningDatabase.confirm(key, {trial number: seconds})`, None when
every re-measurement failed; another worker's confirmations merge, the lower time kept). The
record a compile uses is then the confirmed fastest (`woodpecker.database.choice`).
"""

from __future__ import annotations

from woodpecker.database import COMPLETE, Trial, TuningDatabase
from woodpecker.database.schema import finite_or_none
from woodpecker.kernels.task import KernelTask, Runner


def confirm(db: TuningDatabase, task: KernelTask, runner: Runner, top: int = 3, rounds: int = 3) -> list[Trial]:
    """Re-measures the `top` best complete trials and the default, `rounds` times interleaved,
    unless they all carry a confirmation already; returns the trials it measured."""
    if top <= 0 or rounds <= 0:
        return []
    complete = [t for t in db.trials([task.key], states=[COMPLETE]).get(task.key, []) if t.seconds is not None]
    ranked = sorted(complete, key=lambda t: (t.seconds, t.number))[:top]
    default = min((t for t in complete if t.is_default), key=lambda t: t.number, default=None)
    chosen = ranked + ([default] if default is not None and all(default.number != t.number for t in ranked) else [])
    known = db.confirmations([task.key]).get(task.key, {})
    if len(chosen) < 2 or all(finite_or_none(known.get(t.number)) is not None for t in chosen):
        return []
    samples: dict[int, list[float]] = {t.number: [] for t in chosen}
    reference = default.seconds if default is not None else None  # relative times are scaled by it
    for _ in range(rounds):
        for trial in chosen:
            (result,) = runner.measure(task, [trial.config])
            if result.ok:
                samples[trial.number].append(result.value(reference))
    db.confirm(task.key, {t.number: min(samples[t.number]) if samples[t.number] else None for t in chosen})
    return chosen
