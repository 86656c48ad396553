"""GeneticSampler (woodpecker.tune.genetic) on a synthetic knob space with a constraint and a repair."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.storages import InMemoryStorage
from optuna.trial import TrialState

from woodpecker.tune.genetic import CANDIDATE_ATTR, GeneticSampler, _Gene, _Search

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
    """Smooth in the domain order, unique minimum 0 at OPTIMUM (which is valid)."""
    i, j = int(math.log2(params["a"])), int(math.log2(params["b"]))
    return (i - 3) ** 2 + (j - 2) ** 2 + 0.5 * (params["c"] - 5) ** 2 + (1.5 if params["d"] == "x" else 0.0)


def suggest(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    return {name: trial.suggest_categorical(name, dist.choices) for name, dist in SPACE.items()}


def objective(trial: optuna.Trial) -> float:
    return cost(suggest(trial))


def key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(params[name] for name in sorted(SPACE))


def make_study(sampler: GeneticSampler, **kwargs: Any) -> optuna.Study:
    return optuna.create_study(direction="minimize", sampler=sampler, **kwargs)


def run(seed: int | None, n_trials: int, objective: Callable[[optuna.Trial], float] = objective, **kwargs: Any):
    kwargs.setdefault("repair", repair)
    kwargs.setdefault("search_space", SPACE)
    study = make_study(GeneticSampler(seed=seed, **kwargs))
    study.optimize(objective, n_trials=n_trials, catch=(RuntimeError,))
    return study


def test_test_space_is_as_described() -> None:
    assert len(VALID) == 416
    assert cost(OPTIMUM) == 0 and is_valid(OPTIMUM)
    assert sum(cost(p) == 0 for p in VALID) == 1


@pytest.mark.parametrize("given_space", [True, False])
def test_every_config_is_repaired(given_space: bool) -> None:
    kwargs: dict[str, Any] = {"search_space": SPACE if given_space else None}
    study = run(0, 80, **kwargs)
    trials = study.get_trials()
    assert len(trials) == 80
    # Without a search space, the very first trial of a fresh study cannot be known to the sampler
    # as a whole (Optuna samples it parameter by parameter); every later one is repaired.
    checked = trials if given_space else trials[1:]
    bad = [t.params for t in checked if not is_valid(t.params)]
    assert not bad
    # The relative sampler chose them (its choice is recorded), not independent sampling.
    assert all(t.system_attrs.get(CANDIDATE_ATTR) == t.params for t in checked)


def test_repair_is_needed_without_it() -> None:
    """The check above can fail: without repair, random configurations break the constraint."""
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

    sampler = GeneticSampler(seed=1, population_size=2, elite=1, search_space=small)
    study = make_study(sampler)
    study.optimize(small_objective, n_trials=9)
    configs = [(t.params["a"], t.params["b"]) for t in study.get_trials()]
    assert len(set(configs[:6])) == 6  # all six configurations first, then repeats (nothing else left)
    assert all(t.state == TrialState.COMPLETE for t in study.get_trials())


def test_same_seed_same_sequence_different_seed_different() -> None:
    def sequence(seed: int) -> list[tuple[Any, ...]]:
        return [key(t.params) for t in run(seed, 40).get_trials()]

    first = sequence(7)
    assert sequence(7) == first
    assert sequence(8) != first
    # The same seed also reproduces without a given search space (history-driven inference).
    no_space = [key(t.params) for t in run(7, 30, search_space=None).get_trials()]
    assert [key(t.params) for t in run(7, 30, search_space=None).get_trials()] == no_space


def test_beats_random_search() -> None:
    budget = 60
    ga_best = [run(seed, budget).best_value for seed in range(5)]
    # Random search without repeats over the valid configurations, same budget (cheap: many seeds).
    random_best = [min(cost(p) for p in random.Random(seed).sample(VALID, budget)) for seed in range(20)]
    assert statistics.mean(ga_best) <= statistics.mean(random_best)
    assert statistics.mean(ga_best) <= statistics.median(random_best)
    # Random search hits the unique optimum in ~14% of the runs (60 of 416); the GA in most.
    assert sum(best == 0 for best in ga_best) >= 3


def test_mutation_prefers_neighbours() -> None:
    study = make_study(GeneticSampler(seed=0, search_space=SPACE))
    study.ask()
    sampler = study.sampler
    assert isinstance(sampler, GeneticSampler)
    search = _Search(sampler, study, study.get_trials(deepcopy=False)[0], [_Gene("c", C)])
    moves = [search._mutate_gene(0, 3) for _ in range(2000)]
    assert 3 not in moves and set(moves) == set(C) - {3}
    neighbours = sum(move in (2, 4) for move in moves) / len(moves)
    assert 0.55 < neighbours < 0.75  # 1/2 + 1/2 * 2/7 = 0.64; a uniform move would give 2/7 = 0.29
    assert {search._mutate_gene(0, 0) for _ in range(50)} >= {1}  # the edge has one neighbour only


def test_children_come_from_parents() -> None:
    """After the initial population, the GA proposes configurations near good ones, not random ones."""
    study = run(11, 60, population_size=10)
    trials = study.get_trials()
    initial = [cost(t.params) for t in trials[:10]]
    later = [cost(t.params) for t in trials[30:]]
    assert statistics.mean(later) < statistics.mean(initial)


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
    states = {t.state for t in trials}
    assert {TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE} <= states
    configs = [key(t.params) for t in trials]
    assert len(set(configs)) == len(configs)  # failed / pruned configurations are not proposed again
    assert all(is_valid(t.params) for t in trials)
    assert study.best_value == 0


def test_all_trials_failing() -> None:
    def crash(trial: optuna.Trial) -> float:
        suggest(trial)
        raise RuntimeError("always")

    study = run(2, 30, objective=crash, population_size=4, elite=1)
    trials = study.get_trials()
    assert all(t.state == TrialState.FAIL for t in trials)
    configs = [key(t.params) for t in trials]
    assert len(set(configs)) == len(configs) == 30


def test_shared_storage_interleaved_workers() -> None:
    storage = InMemoryStorage()
    # Same seed on purpose: the random streams depend on the trial number, so workers still differ.
    first = optuna.create_study(
        study_name="shared", storage=storage, sampler=GeneticSampler(seed=0, repair=repair, population_size=6)
    )
    second = optuna.load_study(
        study_name="shared", storage=storage, sampler=GeneticSampler(seed=0, repair=repair, population_size=6)
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
            params = suggest(done)
            done_study.tell(done, cost(params))
    for done_study, done in pending:
        done_study.tell(done, cost(suggest(done)))
    trials = first.get_trials()
    assert len(trials) == 60 and all(t.state == TrialState.COMPLETE for t in trials)
    configs = [key(t.params) for t in trials]
    assert len(set(configs)) == len(configs)
    assert all(is_valid(t.params) for t in trials[1:])


def test_enqueue_trial() -> None:
    study = make_study(GeneticSampler(seed=4, repair=repair, search_space=SPACE, population_size=4, elite=1))
    study.enqueue_trial(OPTIMUM)
    study.enqueue_trial({"a": 32, "b": 2, "c": 1, "d": "x"})
    study.enqueue_trial({"a": 16, "c": 0})  # partial: b and d come from the sampler, a and c are kept
    study.optimize(objective, n_trials=40)
    trials = study.get_trials()
    assert trials[0].params == OPTIMUM and trials[0].value == 0
    assert trials[1].params == {"a": 32, "b": 2, "c": 1, "d": "x"}
    assert trials[2].params["a"] == 16 and trials[2].params["c"] == 0 and is_valid(trials[2].params)
    configs = [key(t.params) for t in trials]
    assert len(set(configs)) == len(configs)  # the enqueued configurations are not proposed again


@pytest.mark.parametrize("seed", range(8))
def test_waiting_enqueued_trial_counts_as_visited(seed: int) -> None:
    tiny = {"a": CategoricalDistribution([1, 2])}
    study = make_study(GeneticSampler(seed=seed, search_space=tiny))
    running = study.ask()  # no queued trial yet: a fresh one, nothing sampled so far
    study.enqueue_trial({"a": 1})
    # The relative sample happens now, while the enqueued trial waits: its configuration is taken.
    assert running.suggest_categorical("a", [1, 2]) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"population_size": 1},
        {"population_size": 0},
        {"elite": 12},
        {"elite": -1},
        {"population_size": 4, "elite": 5},
        {"tournament": 0},
        {"crossover_prob": 1.5},
        {"crossover_prob": -0.1},
        {"mutation_prob": 2.0},
        {"mutation_prob": float("nan")},
        {"max_retries": -1},
        {"seed": "seven"},
        {"repair": 3},
        {"search_space": {"x": optuna.distributions.IntDistribution(0, 3)}},
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GeneticSampler(**kwargs)


def test_valid_arguments() -> None:
    sampler = GeneticSampler(population_size=2, elite=0, tournament=1, crossover_prob=0.0, mutation_prob=1.0)
    assert sampler.population_size == 2 and sampler.mutation_prob == 1.0
    assert GeneticSampler().mutation_prob is None  # resolved to 1/number of knobs when sampling


def test_repair_returning_out_of_domain_values_is_reported() -> None:
    study = make_study(GeneticSampler(seed=0, repair=lambda p: {**p, "a": 3}, search_space=SPACE))
    with pytest.raises(ValueError, match="repair returned 3"):
        study.optimize(objective, n_trials=1)


def test_maximize_and_independent_params() -> None:
    """A maximizing study is handled, and a parameter outside the relative space is sampled independently."""

    def both(trial: optuna.Trial) -> float:
        params = suggest(trial)
        extra = trial.suggest_float("extra", 0.0, 1.0)
        flag = trial.suggest_categorical("flag", [False, True])
        assert 0.0 <= extra <= 1.0 and flag in (False, True)
        return -cost(params)

    sampler = GeneticSampler(seed=3, repair=repair)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(both, n_trials=60)
    assert study.best_value >= -0.5
