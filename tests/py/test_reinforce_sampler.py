"""ReinforceSampler (woodpecker.tune.reinforce) on a synthetic knob space with a constraint and a repair.

The landscape (here valued by its run time, minimum 1 at OPTIMUM) and the checks shared with
test_genetic_sampler.py are in sampler_landscape.py; the guarantees both samplers share are
tested in test_sampler_contract.py.
"""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import numpy as np
import optuna
import pytest
import sampler_landscape as landscape
from optuna.trial import TrialState
from sampler_landscape import OPTIMUM, SMALL, SPACE, TINY, VALID, A, C, D, is_valid, objective_of, repair, run_time

from woodpecker.tune.genetic import CANDIDATE_ATTR as GENETIC_CANDIDATE_ATTR
from woodpecker.tune.reinforce import ReinforceSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

objective = objective_of(run_time)


def run(seed: int | None, n_trials: int, objective: landscape.Objective = objective, **kwargs: Any) -> optuna.Study:
    return landscape.run(ReinforceSampler, seed, n_trials, objective, **kwargs)


def test_test_space_is_as_described() -> None:
    assert len(VALID) == 416
    assert run_time(OPTIMUM) == 1 and is_valid(OPTIMUM)
    assert sum(run_time(p) == 1 for p in VALID) == 1
    assert min(run_time(p) for p in VALID) == 1


def test_exhausting_a_small_space() -> None:
    landscape.check_exhausts_small_space(ReinforceSampler(seed=1, batch_size=2, search_space=SMALL))


def test_same_seed_same_sequence_different_seed_different() -> None:
    first = landscape.sequence(run, 7, 40)
    assert landscape.sequence(run, 7, 40) == first
    assert landscape.sequence(run, 8, 40) != first
    # The same seed also reproduces without a given search space (history-driven inference).
    assert landscape.sequence(run, 7, 40, search_space=None) == landscape.sequence(run, 7, 40, search_space=None)


def test_warmup_ignores_the_values_then_the_policy_follows_them() -> None:
    def inverted(trial: optuna.Trial) -> float:
        return 1.0 / run_time(landscape.suggest(trial))

    normal = landscape.sequence(run, 5, 40, warmup=16)
    upside_down = landscape.sequence(run, 5, 40, objective=inverted, warmup=16)
    assert normal[:16] == upside_down[:16]  # uniform random: the same draws whatever the values
    assert normal[16:] != upside_down[16:]


def test_beats_random_search() -> None:
    budget, seeds = 60, range(5)
    rl_best = [run(seed, budget).best_value for seed in seeds]
    # Random search without repeats over the valid configurations, same budget, same seeds.
    random_best = [min(run_time(p) for p in random.Random(seed).sample(VALID, budget)) for seed in seeds]
    assert statistics.mean(rl_best) < statistics.mean(random_best)
    many_random = [min(run_time(p) for p in random.Random(seed).sample(VALID, budget)) for seed in range(40)]
    assert statistics.mean(rl_best) < statistics.mean(many_random)
    # Random search hits the unique optimum in ~14% of the runs (60 of 416); the agent in most.
    assert sum(best == 1 for best in rl_best) >= 3


def test_later_trials_are_better_than_the_warmup() -> None:
    trials = run(11, 64).get_trials()
    warmup = [run_time(t.params) for t in trials[:8]]
    later = [run_time(t.params) for t in trials[40:]]
    assert statistics.mean(later) < statistics.mean(warmup)


def test_policy_concentrates() -> None:
    study = landscape.make_study(ReinforceSampler(seed=2, repair=repair, search_space=SPACE))
    uniform = study.sampler.policy(study)  # type: ignore[attr-defined]
    assert set(uniform) == set(SPACE)
    for name, probs in uniform.items():
        assert probs.shape == (len(SPACE[name].choices),)
        np.testing.assert_allclose(probs, 1.0 / len(probs))

    study.optimize(objective, n_trials=80)
    policy = study.sampler.policy(study)  # type: ignore[attr-defined]
    for probs in policy.values():
        assert np.all(probs > 0) and math.isclose(float(probs.sum()), 1.0)
    best_a = policy["a"][A.index(OPTIMUM["a"])]
    assert best_a > 1.0 / len(A)
    assert best_a == policy["a"].max()
    assert policy["d"][D.index("y")] > 0.5


def _add(study: optuna.Study, params: dict[str, Any], value: float | None) -> None:
    state = TrialState.FAIL if value is None else TrialState.COMPLETE
    study.add_trial(optuna.trial.create_trial(params=params, distributions=dict(SPACE), value=value, state=state))


def _history(direction: str, good: float, bad: float | None, batches: int = 2) -> optuna.Study:
    """A study where c == 5 gets the value `good`, other values of c `bad`; the other knobs fixed."""
    study = optuna.create_study(direction=direction, sampler=ReinforceSampler(seed=0, search_space=SPACE))
    for n in range(8 * batches):
        c = C[n % len(C)]
        _add(study, {"a": 1, "b": 1, "c": c, "d": "x"}, good if c == 5 else bad)
    return study


@pytest.mark.parametrize(
    ("direction", "good", "bad"),
    [("minimize", 1.0, 3.0), ("maximize", 3.0, 1.0), ("minimize", 1.0, None)],
)
def test_the_policy_moves_towards_rewarded_choices(direction: str, good: float, bad: float | None) -> None:
    study = _history(direction, good, bad)
    policy = study.sampler.policy(study)  # type: ignore[attr-defined]
    rewarded = policy["c"][C.index(5)]
    assert rewarded > 1.0 / len(C) and rewarded == policy["c"].max()


def test_the_policy_moves_away_from_punished_choices() -> None:
    study = _history("minimize", 3.0, 1.0)  # c == 5 is now the worst choice
    assert study.sampler.policy(study)["c"][C.index(5)] < 1.0 / len(C)  # type: ignore[attr-defined]


def test_incomplete_batch_waits() -> None:
    study = optuna.create_study(sampler=ReinforceSampler(seed=0, search_space=SPACE, batch_size=8))
    for n in range(7):
        _add(study, {"a": 1, "b": 1, "c": C[n], "d": "x"}, 1.0 if n == 5 else 3.0)
    for probs in study.sampler.policy(study).values():  # type: ignore[attr-defined]
        np.testing.assert_allclose(probs, 1.0 / len(probs))


def test_failed_and_pruned_trials() -> None:
    study = run(5, 120, objective=landscape.flaky(run_time))
    landscape.check_failed_and_pruned_trials(study, best_value=1)
    policy = study.sampler.policy(study)  # type: ignore[attr-defined]
    assert policy["c"][C.index(0)] < 1.0 / len(C) and policy["c"][C.index(7)] < 1.0 / len(C)


def test_all_trials_failing() -> None:
    study = run(2, 30, objective=landscape.crash, batch_size=4)
    landscape.check_all_trials_failing(study)
    for probs in study.sampler.policy(study).values():  # type: ignore[attr-defined]
        assert np.all(np.isfinite(probs)) and math.isclose(float(probs.sum()), 1.0)


def test_nan_and_zero_values() -> None:
    """A NaN value counts as a failure; a zero run time is clamped, not log(0)."""

    def odd(trial: optuna.Trial) -> float:
        params = landscape.suggest(trial)
        if params["c"] == 0:
            return float("nan")
        return 0.0 if params == OPTIMUM else run_time(params)

    study = run(1, 60, objective=odd)
    for probs in study.sampler.policy(study).values():  # type: ignore[attr-defined]
        assert np.all(np.isfinite(probs)) and math.isclose(float(probs.sum()), 1.0)
    assert landscape.all_distinct(study.get_trials())


def test_shared_storage_interleaved_workers() -> None:
    # Same seed on purpose: the random streams depend on the trial number, so workers still differ.
    first, second = landscape.check_interleaved_workers(
        lambda: ReinforceSampler(seed=0, repair=repair, batch_size=4), run_time
    )
    # Both workers rebuild the same policy from the shared history.
    for name, probs in first.sampler.policy(first).items():  # type: ignore[attr-defined]
        np.testing.assert_array_equal(probs, second.sampler.policy(second)[name])  # type: ignore[attr-defined]


def test_enqueue_trial() -> None:
    sampler = ReinforceSampler(seed=4, repair=repair, search_space=SPACE, batch_size=4)
    landscape.check_enqueue_trial(sampler, run_time)


@pytest.mark.parametrize("seed", range(6))
def test_waiting_enqueued_trial_counts_as_visited(seed: int) -> None:
    landscape.check_waiting_enqueued_trial_counts_as_visited(ReinforceSampler(seed=seed, search_space=TINY))


@pytest.mark.parametrize("seed", range(6))
def test_genetic_sampler_candidates_count_as_visited(seed: int) -> None:
    study = landscape.make_study(ReinforceSampler(seed=seed, search_space=TINY))
    other = study.ask()  # as if a GeneticSampler worker had chosen a == 1 and not suggested it yet
    study._storage.set_trial_system_attr(other._trial_id, GENETIC_CANDIDATE_ATTR, {"a": 1})
    assert study.ask().suggest_categorical("a", [1, 2]) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": 2.5},
        {"batch_size": True},
        {"learning_rate": 0.0},
        {"learning_rate": -1.0},
        {"learning_rate": float("inf")},
        {"learning_rate": "fast"},
        {"baseline_decay": 1.5},
        {"baseline_decay": -0.1},
        {"baseline_decay": float("nan")},
        {"entropy": -0.01},
        {"entropy": float("nan")},
        {"warmup": -1},
        {"warmup": 1.5},
        {"max_retries": -1},
        {"seed": "seven"},
        {"repair": 3},
        {"is_valid": "yes"},
        {"search_space": {"x": optuna.distributions.IntDistribution(0, 3)}},
        {"search_space": ["a"]},
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ReinforceSampler(**kwargs)


def test_valid_arguments() -> None:
    sampler = ReinforceSampler(batch_size=1, learning_rate=1, baseline_decay=1, entropy=0, warmup=0, max_retries=0)
    assert sampler.batch_size == 1 and sampler.warmup == 0 and sampler.baseline_decay == 1.0
    assert ReinforceSampler(batch_size=5).warmup == 5  # the warm-up defaults to one batch
    study = run(0, 12, batch_size=1, warmup=0, max_retries=0)
    assert landscape.all_distinct(study.get_trials())


def test_repair_returning_out_of_domain_values_is_reported() -> None:
    landscape.check_repair_returning_out_of_domain_values_is_reported(ReinforceSampler)


def test_maximize_and_independent_params() -> None:
    """A maximizing study is handled, and a parameter outside the relative space is sampled independently."""
    study = optuna.create_study(direction="maximize", sampler=ReinforceSampler(seed=3, repair=repair))
    study.optimize(landscape.with_extra_params(lambda params: 1.0 / run_time(params)), n_trials=60)  # a throughput
    assert study.best_value >= 1.0 / 1.5
