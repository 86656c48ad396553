"""The synthetic knob landscape the sampler tests run on, and the checks both samplers must pass.

Used by test_genetic_sampler.py (GeneticSampler) and test_reinforce_sampler.py (ReinforceSampler):
four ordered knobs, 6*6*8*2 = 576 raw configurations, 416 valid ones (a*b <= 64), a repair, and a
cost smooth in the domain order with its unique minimum at OPTIMUM. The `check_*` functions are
scenarios common to both samplers (no re-measuring, repair, enqueued trials, shared storage...);
each test file calls them with its own sampler and adds the sampler's specific checks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

Params = dict[str, Any]
Objective = Callable[[optuna.Trial], float]

A = [1, 2, 4, 8, 16, 32]
B = [1, 2, 4, 8, 16, 32]
C = [0, 1, 2, 3, 4, 5, 6, 7]
D = ["x", "y"]
SPACE = {
    "a": CategoricalDistribution(A),
    "b": CategoricalDistribution(B),
    "c": CategoricalDistribution(C),
    "d": CategoricalDistribution(D),
}
VALID = [dict(zip("abcd", v, strict=True)) for v in itertools.product(A, B, C, D) if v[0] * v[1] <= 64]
OPTIMUM = {"a": 8, "b": 4, "c": 5, "d": "y"}
SMALL = {"a": CategoricalDistribution([1, 2, 4]), "b": CategoricalDistribution([1, 2])}  # six configurations
TINY = {"a": CategoricalDistribution([1, 2])}  # two configurations


def is_valid(params: Params) -> bool:
    return params["a"] * params["b"] <= 64


def repair(params: Params) -> Params:
    """Halve the larger of a and b until a*b <= 64."""
    params = dict(params)
    while params["a"] * params["b"] > 64:
        if params["a"] >= params["b"]:
            params["a"] //= 2
        else:
            params["b"] //= 2
    return params


def cost(params: Params) -> float:
    """Smooth in the domain order, unique minimum 0 at OPTIMUM (which is valid)."""
    i, j = int(math.log2(params["a"])), int(math.log2(params["b"]))
    return (i - 3) ** 2 + (j - 2) ** 2 + 0.5 * (params["c"] - 5) ** 2 + (1.5 if params["d"] == "x" else 0.0)


def run_time(params: Params) -> float:
    """A run time: the cost plus 1 (> 0, unique minimum 1 at OPTIMUM)."""
    return 1.0 + cost(params)


def suggest(trial: optuna.trial.BaseTrial) -> Params:
    return {name: trial.suggest_categorical(name, dist.choices) for name, dist in SPACE.items()}


def key(params: Params) -> tuple[Any, ...]:
    return tuple(params[name] for name in sorted(SPACE))


def all_distinct(trials: Sequence[FrozenTrial]) -> bool:
    """Whether no configuration was measured twice."""
    configs = [key(t.params) for t in trials]
    return len(set(configs)) == len(configs)


# -- objectives -------------------------------------------------------------------------------------


def objective_of(value: Callable[[Params], float]) -> Objective:
    """The objective that suggests the four knobs and returns `value` of them."""

    def objective(trial: optuna.Trial) -> float:
        return value(suggest(trial))

    return objective


def flaky(value: Callable[[Params], float]) -> Objective:
    """`objective_of(value)`, but c in (0, 7) crashes (RuntimeError) and c == 6 is pruned."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        if params["c"] in (0, 7):
            raise RuntimeError("candidate crashed")
        if params["c"] == 6:
            raise optuna.TrialPruned()
        return value(params)

    return objective


def crash(trial: optuna.Trial) -> float:
    suggest(trial)
    raise RuntimeError("always")


def with_extra_params(value: Callable[[Params], float]) -> Objective:
    """`objective_of(value)` that also suggests a float and a boolean outside the knobs' space."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        extra = trial.suggest_float("extra", 0.0, 1.0)
        flag = trial.suggest_categorical("flag", [False, True])
        assert 0.0 <= extra <= 1.0 and flag in (False, True)
        return value(params)

    return objective


# -- studies ----------------------------------------------------------------------------------------


def make_study(sampler: optuna.samplers.BaseSampler, **kwargs: Any) -> optuna.Study:
    return optuna.create_study(direction="minimize", sampler=sampler, **kwargs)


def run(
    sampler_class: Callable[..., optuna.samplers.BaseSampler],
    seed: int | None,
    n_trials: int,
    objective: Objective,
    **kwargs: Any,
) -> optuna.Study:
    """`n_trials` of `objective` (RuntimeErrors fail the trial) with `sampler_class(seed=seed, **kwargs)`.

    The repair and the search space are given unless kwargs say otherwise.
    """
    kwargs.setdefault("repair", repair)
    kwargs.setdefault("search_space", SPACE)
    study = make_study(sampler_class(seed=seed, **kwargs))
    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    return study


def sequence(run: Callable[..., optuna.Study], seed: int, n_trials: int, **kwargs: Any) -> list[tuple[Any, ...]]:
    """The configurations of `run(seed, n_trials, **kwargs)`, in trial order."""
    return [key(t.params) for t in run(seed, n_trials, **kwargs).get_trials()]


# -- checks common to both samplers -----------------------------------------------------------------


def check_every_config_is_repaired(study: optuna.Study, given_space: bool, candidate_attr: str) -> None:
    trials = study.get_trials()
    assert len(trials) == 80
    # Without a search space, the very first trial of a fresh study cannot be known to the sampler
    # as a whole (Optuna samples it parameter by parameter); every later one is repaired.
    checked = trials if given_space else trials[1:]
    assert not [t.params for t in checked if not is_valid(t.params)]
    # The relative sampler chose them (its choice is recorded), not independent sampling.
    assert all(t.system_attrs.get(candidate_attr) == t.params for t in checked)


def check_exhausts_small_space(sampler: optuna.samplers.BaseSampler) -> None:
    """On SMALL (the sampler's search space), all six configurations come first, then repeats."""

    def small_objective(trial: optuna.Trial) -> float:
        return trial.suggest_categorical("a", [1, 2, 4]) + trial.suggest_categorical("b", [1, 2])

    study = make_study(sampler)
    study.optimize(small_objective, n_trials=9)
    configs = [(t.params["a"], t.params["b"]) for t in study.get_trials()]
    assert len(set(configs[:6])) == 6  # all six configurations first, then repeats (nothing else left)
    assert all(t.state == TrialState.COMPLETE for t in study.get_trials())


def check_failed_and_pruned_trials(study: optuna.Study, best_value: float) -> None:
    """After 120 trials of `flaky`: failed / pruned configurations are not proposed again."""
    trials = study.get_trials()
    assert {TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE} <= {t.state for t in trials}
    assert all_distinct(trials)
    assert all(is_valid(t.params) for t in trials)
    assert study.best_value == best_value


def check_all_trials_failing(study: optuna.Study) -> None:
    """After 30 trials of `crash`: all failed, none repeated."""
    trials = study.get_trials()
    assert all(t.state == TrialState.FAIL for t in trials)
    assert len(trials) == 30 and all_distinct(trials)


def check_interleaved_workers(
    make_sampler: Callable[[], optuna.samplers.BaseSampler], value: Callable[[Params], float]
) -> tuple[optuna.Study, optuna.Study]:
    """Two workers sharing one storage, asking in turn; three trials run at any time, 60 in all.

    Each trial suggests one parameter at once, the others only when it is finished, after the
    other worker sampled. The 60 trials must be complete, distinct and (but the first) valid.
    """
    storage = InMemoryStorage()
    first = optuna.create_study(study_name="shared", storage=storage, sampler=make_sampler())
    second = optuna.load_study(study_name="shared", storage=storage, sampler=make_sampler())
    pending: list[tuple[optuna.Study, optuna.Trial]] = []
    for step in range(60):
        study = first if step % 2 == 0 else second
        trial = study.ask()
        # Only one parameter now: the others are suggested later, after the other worker sampled.
        trial.suggest_categorical("a", A)
        pending.append((study, trial))
        if len(pending) == 3:  # finish the oldest: three trials are running at any time
            done_study, done = pending.pop(0)
            done_study.tell(done, value(suggest(done)))
    for done_study, done in pending:
        done_study.tell(done, value(suggest(done)))
    trials = first.get_trials()
    assert len(trials) == 60 and all(t.state == TrialState.COMPLETE for t in trials)
    assert all_distinct(trials)
    assert all(is_valid(t.params) for t in trials[1:])
    return first, second


def check_enqueue_trial(sampler: optuna.samplers.BaseSampler, value: Callable[[Params], float]) -> None:
    """Enqueued trials are run as given (a partial one completed by the sampler) and not proposed again."""
    study = make_study(sampler)
    study.enqueue_trial(OPTIMUM)
    study.enqueue_trial({"a": 32, "b": 2, "c": 1, "d": "x"})
    study.enqueue_trial({"a": 16, "c": 0})  # partial: b and d come from the sampler, a and c are kept
    study.optimize(objective_of(value), n_trials=40)
    trials = study.get_trials()
    assert trials[0].params == OPTIMUM and trials[0].value == value(OPTIMUM)
    assert trials[1].params == {"a": 32, "b": 2, "c": 1, "d": "x"}
    assert trials[2].params["a"] == 16 and trials[2].params["c"] == 0 and is_valid(trials[2].params)
    assert all_distinct(trials)  # the enqueued configurations are not proposed again


def check_waiting_enqueued_trial_counts_as_visited(sampler: optuna.samplers.BaseSampler) -> None:
    """On TINY (the sampler's search space), a trial sampled while {"a": 1} waits in the queue takes a == 2."""
    study = make_study(sampler)
    running = study.ask()  # no queued trial yet: a fresh one, nothing sampled so far
    study.enqueue_trial({"a": 1})
    # The relative sample happens now, while the enqueued trial waits: its configuration is taken.
    assert running.suggest_categorical("a", [1, 2]) == 2


def check_repair_returning_out_of_domain_values_is_reported(
    sampler_class: Callable[..., optuna.samplers.BaseSampler],
) -> None:
    study = make_study(sampler_class(seed=0, repair=lambda p: {**p, "a": 3}, search_space=SPACE))
    with pytest.raises(ValueError, match="repair returned 3"):
        study.optimize(objective_of(cost), n_trials=1)
