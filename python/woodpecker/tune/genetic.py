"""A genetic-algorithm search strategy for schedule knobs, as an Optuna sampler.

A configuration is a genome: one gene per knob, the gene being the index of the knob's value in its
ordered domain. What the sampler shares with `woodpecker.tune.reinforce` (visited configurations,
pinned parameters, repair, no re-measuring, seeding, the relative search space) is described in
`woodpecker.tune.sampler_base`; its choices are recorded in the trial system attribute
`GeneticSampler:candidate`.

The algorithm is a steady-state GA whose whole state is the study's trial history:

* **Initial population.** While fewer than `population_size` trials are finished (COMPLETE or
  FAIL), each new trial is a uniformly random configuration, repaired, and not visited.
* **Parent pool and elitism.** Afterwards the parent pool is the `population_size` best COMPLETE
  trials (failed trials have the worst fitness and never enter it; pruned ones have no fitness).
  As configurations are never re-measured, an individual survives by staying in this pool: the
  `elite` best trials always belong to it, whatever was measured since.
* **Tournament selection.** Each parent is the best of `tournament` pool members drawn at random
  (without replacement; the second parent is drawn from the pool without the first one).
* **Uniform crossover.** With probability `crossover_prob` every gene of the child comes from
  either parent with probability 1/2; otherwise the child is a copy of the first parent.
* **Mutation.** Each gene, with probability `mutation_prob` (default 1/number of knobs), moves to
  another domain value: half of the time to a neighbour (index ±1, as domains are ordered), else
  to a uniformly random other value. A child equal to one of its parents gets one such forced
  mutation.
* **No re-measuring.** The child is repaired; if it is visited, a new child is bred (new parents,
  new crossover, new mutation), up to `max_retries` times, before the random fallback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from woodpecker.tune.sampler_base import Gene, Genome, KnobSampler, KnobSearch, is_int, is_probability

__all__ = ["CANDIDATE_ATTR", "GeneticSampler"]

# The trial system attribute holding the configuration sample_relative chose for the trial.
CANDIDATE_ATTR = "GeneticSampler:candidate"


class GeneticSampler(KnobSampler):
    """A genetic algorithm over categorical knobs with repair and no re-measuring (see the module doc).

    Args:
        population_size: trials of the random initial population, and size of the parent pool.
        elite: the best trials that always stay in the parent pool (< population_size).
        tournament: pool members drawn per tournament (>= 1; 1 is uniform random selection).
        crossover_prob: probability of a uniform crossover (else the child copies a parent).
        mutation_prob: per-gene mutation probability; None: 1 / number of knobs.
        max_retries: children bred per trial before falling back to a random unvisited one.
        seed, repair, is_valid, search_space: as in `woodpecker.tune.sampler_base.KnobSampler`.
    """

    name = "GeneticSampler"
    candidate_attr = CANDIDATE_ATTR
    visited_attrs = (CANDIDATE_ATTR,)

    def __init__(
        self,
        *,
        population_size: int = 12,
        elite: int = 2,
        tournament: int = 3,
        crossover_prob: float = 0.9,
        mutation_prob: float | None = None,
        seed: int | None = None,
        repair: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        max_retries: int = 50,
        is_valid: Callable[[dict[str, Any]], bool] | None = None,
        search_space: Mapping[str, BaseDistribution] | None = None,
    ) -> None:
        if not is_int(population_size) or population_size < 2:
            raise ValueError(f"population_size must be an integer >= 2, got {population_size!r}")
        if not is_int(elite) or not 0 <= elite < population_size:
            raise ValueError(
                f"elite must be an integer with 0 <= elite < population_size ({population_size}), got {elite!r}"
            )
        if not is_int(tournament) or tournament < 1:
            raise ValueError(f"tournament must be an integer >= 1, got {tournament!r}")
        if not is_probability(crossover_prob):
            raise ValueError(f"crossover_prob must be a probability in [0, 1], got {crossover_prob!r}")
        if mutation_prob is not None and not is_probability(mutation_prob):
            raise ValueError(f"mutation_prob must be None or a probability in [0, 1], got {mutation_prob!r}")
        super().__init__(
            seed=seed, repair=repair, is_valid=is_valid, search_space=search_space, max_retries=max_retries
        )
        self.population_size = population_size
        self.elite = elite
        self.tournament = tournament
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = None if mutation_prob is None else float(mutation_prob)

    def _search(self, study: Study, trial: FrozenTrial, genes: list[Gene]) -> _Search:
        return _Search(self, study, trial, genes)


class _Search(KnobSearch):
    """One trial's configuration: a child of the parent pool, once the initial population is finished."""

    sampler: GeneticSampler

    def __init__(self, sampler: GeneticSampler, study: Study, trial: FrozenTrial, genes: list[Gene]) -> None:
        super().__init__(sampler, study, trial, genes)
        self.mutation_prob = sampler.mutation_prob if sampler.mutation_prob is not None else 1.0 / len(genes)
        complete: list[tuple[float, int, Genome]] = []
        for t in self.trials:
            if t.number == self.trial_number:
                continue
            if t.state == TrialState.COMPLETE and t.value is not None and not math.isnan(t.value):
                genome = self._genome(t.params)
                if genome is not None:
                    complete.append((self.sign * t.value, t.number, genome))
        complete.sort()
        # The parent pool: the best population_size complete trials (the elite best always among them).
        self.pool = [genome for _, _, genome in complete[: sampler.population_size]]

    def _proposer(self) -> Callable[[], Genome] | None:
        if self.finished >= self.sampler.population_size and self.pool:
            return self._breed
        return None

    def _breed(self) -> Genome:
        rng = self.rng
        first = self._tournament(range(len(self.pool)))
        others = [i for i in range(len(self.pool)) if i != first]
        second = self._tournament(others) if others else first
        p1, p2 = self.pool[first], self.pool[second]
        if rng.random() < self.sampler.crossover_prob:
            child = [a if rng.random() < 0.5 else b for a, b in zip(p1, p2, strict=True)]
        else:
            child = list(p1)
        for pos in range(len(child)):
            if rng.random() < self.mutation_prob:
                child[pos] = self._mutate_gene(pos, child[pos])
        if tuple(child) in (p1, p2):
            mutable = [pos for pos, g in enumerate(self.genes) if len(g) > 1]
            if mutable:
                pos = mutable[rng.randrange(len(mutable))]
                child[pos] = self._mutate_gene(pos, child[pos])
        return tuple(child)

    def _tournament(self, candidates: Sequence[int]) -> int:
        """The best (lowest pool index: the pool is sorted best first) of `tournament` random candidates."""
        k = min(self.sampler.tournament, len(candidates))
        return min(self.rng.sample(list(candidates), k))

    def _mutate_gene(self, pos: int, index: int) -> int:
        size = len(self.genes[pos])
        if size <= 1:
            return index
        rng = self.rng
        if rng.random() < 0.5:  # a neighbour in the domain order
            neighbours = [i for i in (index - 1, index + 1) if 0 <= i < size]
            return neighbours[rng.randrange(len(neighbours))]
        other = rng.randrange(size - 1)  # a uniformly random other value
        return other if other < index else other + 1
