"""ReinforceSampler (woodpecker.tune.reinforce) on a synthetic knob space with a constraint and a repair."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.storages import InMemoryStorage
from optuna.trial import TrialState

from woodpecker.tune.genetic import CANDIDATE_ATTR as GENETIC_CANDIDATE_ATTR
from woodpecker.tune.reinforce import CANDIDATE_ATTR, ReinforceSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Four ordered knobs, 6*6*8*2 = 576 raw configurations, 416 valid ones (a*b <= 64).
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


def is_valid(params: dict[str, Any]) -> bool:
    return params["a"] * params["b"] <= 64


def repair(params: dict[str, Any]) -> dict[str, Any]:
    """Halve the larger of a and b until a*b <= 64."""
    params = dict(params)
    while params["a"] * params["b"] > 64:
        if params["a"] >= params["b"]:
            params["a"] //= 2
        else:
            params["b"] //= 2
    return params


def cost(params: dict[str, Any]) -> float:
    """A run time: smooth in the domain order, > 0, unique minimum 1 at OPTIMUM (which is valid)."""
    i, j = int(math.log2(params["a"])), int(math.log2(params["b"]))
    return 1.0 + (i - 3) ** 2 + (j - 2) ** 2 + 0.5 * (params["c"] - 5) ** 2 + (1.5 if params["d"] == "x" else 0.0)


def suggest(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    return {name: trial.suggest_categorical(name, dist.choices) for name, dist in SPACE.items()}


def objective(trial: optuna.Trial) -> float:
    return cost(suggest(trial))


def key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(params[name] for name in sorted(SPACE))


def make_study(sampler: ReinforceSampler, **kwargs: Any) -> optuna.Study:
    return optuna.create_study(direction="minimize", sampler=sampler, **kwargs)


def run(
    seed: int | None, n_trials: int, objective: Callable[[optuna.Trial], float] = objective, **kwargs: Any
) -> optuna.Study:
    kwargs.setdefault("repair", repair)
    kwargs.setdefault("search_space", SPACE)
    study = make_study(ReinforceSampler(seed=seed, **kwargs))
    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    return study


def test_test_space_is_as_described() -> None:
    assert len(VALID) == 416
    assert cost(OPTIMUM) == 1 and is_valid(OPTIMUM)
    assert sum(cost(p) == 1 for p in VALID) == 1
    assert min(cost(p) for p in VALID) == 1


@pytest.mark.parametrize("given_space", [True, False])
def test_every_config_is_repaired(given_space: bool) -> None:
    study = run(0, 80, search_space=SPACE if given_space else None)
    trials = study.get_trials()
    assert len(trials) == 80
    # Without a search space the very first trial of a fresh study is sampled parameter by parameter.
    checked = trials if given_space else trials[1:]
    assert not [t.params for t in checked if not is_valid(t.params)]
    # The relative sampler chose them (its choice is recorded), not independent sampling.
    assert all(t.system_attrs.get(CANDIDATE_ATTR) == t.params for t in checked)


def test_repair_is_needed_without_it() -> None:
    """The check above can fail: without repair, the policy's draws break the constraint."""
    study = run(0, 40, repair=None)
    assert any(not is_valid(t.params) for t in study.get_trials())


def test_is_valid_rejects_without_repair() -> None:
    study = run(0, 60, repair=None, is_valid=is_valid)
    assert all(is_valid(t.params) for t in study.get_trials())


def test_no_duplicates_while_space_is_larger() -> None:
    study = run(3, 150)
    configs = [key(t.params) for t in study.get_trials()]
    assert len(set(configs)) == len(configs) == 150


def test_exhausting_a_small_space() -> None:
    small = {"a": CategoricalDistribution([1, 2, 4]), "b": CategoricalDistribution([1, 2])}

    def small_objective(trial: optuna.Trial) -> float:
        return trial.suggest_categorical("a", [1, 2, 4]) + trial.suggest_categorical("b", [1, 2])

    study = make_study(ReinforceSampler(seed=1, batch_size=2, search_space=small))
    study.optimize(small_objective, n_trials=9)
    configs = [(t.params["a"], t.params["b"]) for t in study.get_trials()]
    assert len(set(configs[:6])) == 6  # all six configurations first, then repeats (nothing else left)
    assert all(t.state == TrialState.COMPLETE for t in study.get_trials())


def test_same_seed_same_sequence_different_seed_different() -> None:
    def sequence(seed: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [key(t.params) for t in run(seed, 40, **kwargs).get_trials()]

    first = sequence(7)
    assert sequence(7) == first
    assert sequence(8) != first
    # The same seed also reproduces without a given search space (history-driven inference).
    assert sequence(7, search_space=None) == sequence(7, search_space=None)


def test_warmup_ignores_the_values_then_the_policy_follows_them() -> None:
    def inverted(trial: optuna.Trial) -> float:
        return 1.0 / cost(suggest(trial))

    normal = [key(t.params) for t in run(5, 40, warmup=16).get_trials()]
    upside_down = [key(t.params) for t in run(5, 40, objective=inverted, warmup=16).get_trials()]
    assert normal[:16] == upside_down[:16]  # uniform random: the same draws whatever the values
    assert normal[16:] != upside_down[16:]


def test_beats_random_search() -> None:
    budget, seeds = 60, range(5)
    rl_best = [run(seed, budget).best_value for seed in seeds]
    # Random search without repeats over the valid configurations, same budget, same seeds.
    random_best = [min(cost(p) for p in random.Random(seed).sample(VALID, budget)) for seed in seeds]
    assert statistics.mean(rl_best) < statistics.mean(random_best)
    many_random = [min(cost(p) for p in random.Random(seed).sample(VALID, budget)) for seed in range(40)]
    assert statistics.mean(rl_best) < statistics.mean(many_random)
    # Random search hits the unique optimum in ~14% of the runs (60 of 416); the agent in most.
    assert sum(best == 1 for best in rl_best) >= 3


def test_later_trials_are_better_than_the_warmup() -> None:
    trials = run(11, 64).get_trials()
    warmup = [cost(t.params) for t in trials[:8]]
    later = [cost(t.params) for t in trials[40:]]
    assert statistics.mean(later) < statistics.mean(warmup)


def test_policy_concentrates() -> None:
    study = make_study(ReinforceSampler(seed=2, repair=repair, search_space=SPACE))
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
    def flaky(trial: optuna.Trial) -> float:
        params = suggest(trial)
        if params["c"] in (0, 7):
            raise RuntimeError("candidate crashed")
        if params["c"] == 6:
            raise optuna.TrialPruned()
        return cost(params)

    study = run(5, 120, objective=flaky)
    trials = study.get_trials()
    assert {TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE} <= {t.state for t in trials}
    configs = [key(t.params) for t in trials]
    assert len(set(configs)) == len(configs)  # failed / pruned configurations are not proposed again
    assert all(is_valid(t.params) for t in trials)
    assert study.best_value == 1
    policy = study.sampler.policy(study)  # type: ignore[attr-defined]
    assert policy["c"][C.index(0)] < 1.0 / len(C) and policy["c"][C.index(7)] < 1.0 / len(C)


def test_all_trials_failing() -> None:
    def crash(trial: optuna.Trial) -> float:
        suggest(trial)
        raise RuntimeError("always")

    study = run(2, 30, objective=crash, batch_size=4)
    trials = study.get_trials()
    assert all(t.state == TrialState.FAIL for t in trials)
    configs = [key(t.params) for t in trials]
    assert len(set(configs)) == len(configs) == 30
    for probs in study.sampler.policy(study).values():  # type: ignore[attr-defined]
        assert np.all(np.isfinite(probs)) and math.isclose(float(probs.sum()), 1.0)


def test_nan_and_zero_values() -> None:
    """A NaN value counts as a failure; a zero run time is clamped, not log(0)."""

    def odd(trial: optuna.Trial) -> float:
        params = suggest(trial)
        if params["c"] == 0:
            return float("nan")
        return 0.0 if params == OPTIMUM else cost(params)

    study = run(1, 60, objective=odd)
    for probs in study.sampler.policy(study).values():  # type: ignore[attr-defined]
        assert np.all(np.isfinite(probs)) and math.isclose(float(probs.sum()), 1.0)
    configs = [key(t.params) for t in study.get_trials()]
    assert len(set(configs)) == len(configs)


def test_shared_storage_interleaved_workers() -> None:
    storage = InMemoryStorage()
    # Same seed on purpose: the random streams depend on the trial number, so workers still differ.
    first = optuna.create_study(
        study_name="shared", storage=storage, sampler=ReinforceSampler(seed=0, repair=repair, batch_size=4)
    )
    second = optuna.load_study(
        study_name="shared", storage=storage, sampler=ReinforceSampler(seed=0, repair=repair, batch_size=4)
    )
    pending: list[tuple[optuna.Study, optuna.Trial]] = []
    for step in range(60):
        study = first if step % 2 == 0 else second
        trial = study.ask()
        # Only one parameter now: the others are suggested later, after the other worker sampled.
        trial.suggest_categorical("a", A)
        pending.append((study, trial))
        if len(pending) == 3:  # finish the oldest: three trials are running at any time
            done_study, done = pending.pop(0)
            done_study.tell(done, cost(suggest(done)))
    for done_study, done in pending:
        done_study.tell(done, cost(suggest(done)))
    trials = first.get_trials()
    assert len(trials) == 60 and all(t.state == TrialState.COMPLETE for t in trials)
    configs = [key(t.params) for t in trials]
    assert len(set(configs)) == len(configs)
    assert all(is_valid(t.params) for t in trials[1:])
    # Both workers rebuild the same policy from the shared history.
    for name, probs in first.sampler.policy(first).items():  # type: ignore[attr-defined]
        np.testing.assert_array_equal(probs, second.sampler.policy(second)[name])  # type: ignore[attr-defined]


def test_enqueue_trial() -> None:
    study = make_study(ReinforceSampler(seed=4, repair=repair, search_space=SPACE, batch_size=4))
    study.enqueue_trial(OPTIMUM)
    study.enqueue_trial({"a": 32, "b": 2, "c": 1, "d": "x"})
    study.enqueue_trial({"a": 16, "c": 0})  # partial: b and d come from the sampler, a and c are kept
    study.optimize(objective, n_trials=40)
    trials = study.get_trials()
    assert trials[0].params == OPTIMUM and trials[0].value == 1
    assert trials[1].params == {"a": 32, "b": 2, "c": 1, "d": "x"}
    assert trials[2].params["a"] == 16 and trials[2].params["c"] == 0 and is_valid(trials[2].params)
    configs = [key(t.params) for t in trials]
    assert len(set(configs)) == len(configs)  # the enqueued configurations are not proposed again


@pytest.mark.parametrize("seed", range(6))
def test_waiting_enqueued_trial_counts_as_visited(seed: int) -> None:
    tiny = {"a": CategoricalDistribution([1, 2])}
    study = make_study(ReinforceSampler(seed=seed, search_space=tiny))
    running = study.ask()  # no queued trial yet: a fresh one, nothing sampled so far
    study.enqueue_trial({"a": 1})
    # The relative sample happens now, while the enqueued trial waits: its configuration is taken.
    assert running.suggest_categorical("a", [1, 2]) == 2


@pytest.mark.parametrize("seed", range(6))
def test_genetic_sampler_candidates_count_as_visited(seed: int) -> None:
    tiny = {"a": CategoricalDistribution([1, 2])}
    study = make_study(ReinforceSampler(seed=seed, search_space=tiny))
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
    configs = [key(t.params) for t in study.get_trials()]
    assert len(set(configs)) == len(configs)


def test_repair_returning_out_of_domain_values_is_reported() -> None:
    study = make_study(ReinforceSampler(seed=0, repair=lambda p: {**p, "a": 3}, search_space=SPACE))
    with pytest.raises(ValueError, match="repair returned 3"):
        study.optimize(objective, n_trials=1)


def test_maximize_and_independent_params() -> None:
    """A maximizing study is handled, and a parameter outside the relative space is sampled independently."""

    def both(trial: optuna.Trial) -> float:
        params = suggest(trial)
        extra = trial.suggest_float("extra", 0.0, 1.0)
        flag = trial.suggest_categorical("flag", [False, True])
        assert 0.0 <= extra <= 1.0 and flag in (False, True)
        return 1.0 / cost(params)  # a throughput

    study = optuna.create_study(direction="maximize", sampler=ReinforceSampler(seed=3, repair=repair))
    study.optimize(both, n_trials=60)
    assert study.best_value >= 1.0 / 1.5
