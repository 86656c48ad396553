"""Confirming the winners: re-measure the best few candidates and the default side by side.

A search keeps the lowest of many noisy measurements, so its best trial is biased towards a
lucky one (the winner's curse); on these VMs one configuration measured twice, compiled twice,
differed by up to 2.6x. After a kernel's search, `confirm` re-measures its `top` best trials
and the default configuration, interleaved, for `rounds` rounds, and stores the lowest median
of each in the study's `confirmed_seconds` attribute ({trial number: seconds}; Optuna does not
let finished trials change). The record a compile uses (`chosen_trial`) is the confirmed
fastest; a study with no confirmation falls back to its lowest value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from woodpecker.kernels.task import KernelTask, Runner
from woodpecker.tune.params import trial_config

CONFIRMED_ATTR = "confirmed_seconds"


Confirmed = Mapping[str, float]  # trial number (as JSON keys are strings) -> seconds


def confirmed_of(study_attrs: Mapping) -> Confirmed:
    value = study_attrs.get(CONFIRMED_ATTR)
    return value if isinstance(value, dict) else {}


def _confirmed(trial: FrozenTrial, confirmed: Confirmed) -> float | None:
    value = confirmed.get(str(trial.number))
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def chosen_trial(trials: Sequence[FrozenTrial], confirmed: Confirmed) -> tuple[FrozenTrial, float] | None:
    """The trial whose configuration a compile uses, with its (confirmed, if any) seconds."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    confirmed_trials = [(t, c) for t in complete if (c := _confirmed(t, confirmed)) is not None]
    if confirmed_trials:
        return min(confirmed_trials, key=lambda pair: pair[1])
    if not complete:
        return None
    best = min(complete, key=lambda t: t.value)
    return best, float(best.value)


def default_seconds(trials: Sequence[FrozenTrial], confirmed: Confirmed) -> float | None:
    """The default configuration's (confirmed, if any) seconds."""
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.user_attrs.get("is_default"):
            value = _confirmed(trial, confirmed)
            return value if value is not None else float(trial.value)
    return None


def confirm(study: optuna.Study, task: KernelTask, runner: Runner, top: int = 3, rounds: int = 3) -> list[FrozenTrial]:
    """Re-measures the `top` best complete trials and the default, `rounds` times interleaved,
    unless they all carry a confirmation already; returns the trials it measured."""
    if top <= 0 or rounds <= 0:
        return []
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    ranked = sorted(complete, key=lambda t: t.value)[:top]
    default = next((t for t in complete if t.user_attrs.get("is_default")), None)
    chosen = ranked + ([default] if default is not None and all(default.number != t.number for t in ranked) else [])
    known = confirmed_of(study.user_attrs)
    if len(chosen) < 2 or all(_confirmed(t, known) is not None for t in chosen):
        return []
    samples: dict[int, list[float]] = {t.number: [] for t in chosen}
    reference = default.value if default is not None else None  # relative times are scaled by it
    for _ in range(rounds):
        for trial in chosen:
            result = runner.measure(task, [trial_config(trial)])[0]
            if result.ok:
                samples[trial.number].append(result.value(reference))
    updated = dict(confirmed_of(study.user_attrs))  # another worker may have added some meanwhile
    for trial in chosen:
        values = samples[trial.number]
        updated[str(trial.number)] = min(values) if values else math.inf
    study.set_user_attr(CONFIRMED_ATTR, updated)
    return chosen
