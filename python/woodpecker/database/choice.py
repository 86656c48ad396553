"""Which configuration a workload's record is: the rule, on plain trials and confirmations.

* Among the complete trials that carry a confirmation (a finite re-measurement), the one with the
  lowest confirmed time: a confirmed time beats a lower unconfirmed one (the search's lowest
  value is biased towards a lucky measurement).
* Else the complete trial with the lowest recorded time, leaving out trials whose re-measurement
  failed unless every complete trial did.
* Failed and running trials are never chosen; a workload without a complete trial has no record.

Ties go to the lower trial number. The default's time is its confirmed time when confirmed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from woodpecker.database.schema import COMPLETE, FAILED, RUNNING, Counts, Record, Trial, finite_or_none

Confirmations = Mapping[int, float | None]  # trial number -> confirmed seconds (None: failed)


def choose_record(
    key: str, trials: Iterable[Trial], confirmations: Confirmations, counts: Counts | None = None
) -> Record | None:
    """The record of workload `key` from its trials and confirmations (None: nothing complete).

    `counts`: the workload's trial counts when `trials` holds only the candidates (every
    confirmed complete trial, the default's, and the lowest complete ones: one more than there
    are failed confirmations); None when `trials` holds all of them."""
    finished = [t for t in trials if t.finished]
    complete = [t for t in finished if t.state == COMPLETE and finite_or_none(t.seconds) is not None]
    if not complete:
        return None
    confirmed = {n: s for n, value in confirmations.items() if (s := finite_or_none(value)) is not None}
    failed_confirmation = {n for n, value in confirmations.items() if finite_or_none(value) is None}
    by_confirmed = [(confirmed[t.number], t.number, t) for t in complete if t.number in confirmed]
    if by_confirmed:
        seconds, _, chosen = min(by_confirmed, key=lambda item: item[:2])
    else:
        pool = [t for t in complete if t.number not in failed_confirmation] or complete
        chosen = min(pool, key=lambda t: (t.seconds, t.number))
        seconds = float(chosen.seconds)
    default = min((t for t in complete if t.is_default), key=lambda t: t.number, default=None)
    default_seconds = None
    if default is not None:
        default_seconds = confirmed.get(default.number, float(default.seconds))
    return Record(
        key=key,
        number=chosen.number,
        config=dict(chosen.config),
        seconds=seconds,
        confirmed=chosen.number in confirmed,
        strategy=chosen.strategy,
        default_number=None if default is None else default.number,
        default_seconds=default_seconds,
        trials=len(finished) if counts is None else counts.finished,
        failures=sum(1 for t in finished if t.state == FAILED) if counts is None else counts.failed,
    )


def count_trials(trials: Iterable[Trial]) -> Counts:
    """Trials by state (pass only live running trials)."""
    running = complete = failed = 0
    for trial in trials:
        running += trial.state == RUNNING
        complete += trial.state == COMPLETE
        failed += trial.state == FAILED
    return Counts(running, complete, failed)


def merge_confirmation(old: float | None, new: float | None, had_old: bool) -> float | None:
    """Two workers' confirmations of one trial: the lower finite value (None only if neither is)."""
    if not had_old:
        return finite_or_none(new)
    values = [v for v in (finite_or_none(old), finite_or_none(new)) if v is not None]
    return min(values) if values else None
