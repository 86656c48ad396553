"""GeneticSampler (woodpecker.tune.genetic) on a synthetic knob space with a constraint and a repair.

The landscape (cost minimum 0 at OPTIMUM) and the checks shared with test_reinforce_sampler.py are
in sampler_landscape.py; the guarantees both samplers share are tested in test_sampler_contract.py.
"""

from __future__ import annotations

import random
import statistics
from typing import Any

import optuna
import pytest
import sampler_landscape as landscape
from sampler_landscape import OPTIMUM, SMALL, SPACE, TINY, VALID, C, cost, is_valid, objective_of, repair

from woodpecker.tune.genetic import GeneticSampler, _Search
from woodpecker.tune.sampler_base import Gene

optuna.logging.set_verbosity(optuna.logging.WARNING)

objective = objective_of(cost)


def run(seed: int | None, n_trials: int, objective: landscape.Objective = objective, **kwargs: Any) -> optuna.Study:
    return landscape.run(GeneticSampler, seed, n_trials, objective, **kwargs)


def test_test_space_is_as_described() -> None:
    assert len(VALID) == 416
    assert cost(OPTIMUM) == 0 and is_valid(OPTIMUM)
    assert sum(cost(p) == 0 for p in VALID) == 1


def test_exhausting_a_small_space() -> None:
    landscape.check_exhausts_small_space(GeneticSampler(seed=1, population_size=2, elite=1, search_space=SMALL))


def test_same_seed_same_sequence_different_seed_different() -> None:
    first = landscape.sequence(run, 7, 40)
    assert landscape.sequence(run, 7, 40) == first
    assert landscape.sequence(run, 8, 40) != first
    # The same seed also reproduces without a given search space (history-driven inference).
    no_space = landscape.sequence(run, 7, 30, search_space=None)
    assert landscape.sequence(run, 7, 30, search_space=None) == no_space


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
    study = landscape.make_study(GeneticSampler(seed=0, search_space=SPACE))
    study.ask()
    sampler = study.sampler
    assert isinstance(sampler, GeneticSampler)
    search = _Search(sampler, study, study.get_trials(deepcopy=False)[0], [Gene("c", C)])
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
    landscape.check_failed_and_pruned_trials(run(5, 120, objective=landscape.flaky(cost)), best_value=0)


def test_all_trials_failing() -> None:
    landscape.check_all_trials_failing(run(2, 30, objective=landscape.crash, population_size=4, elite=1))


def test_shared_storage_interleaved_workers() -> None:
    # Same seed on purpose: the random streams depend on the trial number, so workers still differ.
    landscape.check_interleaved_workers(lambda: GeneticSampler(seed=0, repair=repair, population_size=6), cost)


def test_enqueue_trial() -> None:
    sampler = GeneticSampler(seed=4, repair=repair, search_space=SPACE, population_size=4, elite=1)
    landscape.check_enqueue_trial(sampler, cost)


@pytest.mark.parametrize("seed", range(8))
def test_waiting_enqueued_trial_counts_as_visited(seed: int) -> None:
    landscape.check_waiting_enqueued_trial_counts_as_visited(GeneticSampler(seed=seed, search_space=TINY))


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
    landscape.check_repair_returning_out_of_domain_values_is_reported(GeneticSampler)


def test_maximize_and_independent_params() -> None:
    """A maximizing study is handled, and a parameter outside the relative space is sampled independently."""
    study = optuna.create_study(direction="maximize", sampler=GeneticSampler(seed=3, repair=repair))
    study.optimize(landscape.with_extra_params(lambda params: -cost(params)), n_trials=60)
    assert study.best_value >= -0.5
