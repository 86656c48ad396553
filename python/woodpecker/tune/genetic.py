"""A genetic-algorithm search strategy for schedule knobs, as an Optuna sampler.

Every schedule knob is an Optuna `CategoricalDistribution` over a finite, *ordered* domain (see
`woodpecker.tune.params`). A configuration is a genome: one gene per knob, the gene being the
index of the knob's value in its domain. The sampler minimizes the trial value (seconds; a
maximizing study is handled by negating the values).

The algorithm is a steady-state GA whose whole state is the study's trial history, so that several
processes sharing one study (and `study.enqueue_trial`) work without any sampler state in memory:

* **Visited configurations.** Every trial of the study, in any state (complete, failed, pruned,
  running in another worker, waiting in the queue), marks its configuration as visited; a
  visited configuration is never proposed again while an unvisited one can be found, so nothing
  is measured twice. A configuration chosen by `sample_relative` is also written at once to the
  trial's system attribute `GeneticSampler:candidate`, so that other workers see it as visited
  before the objective has suggested all its parameters.
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
* **Repair.** Knobs have constraints between them: every candidate goes through the `repair`
  callable (any configuration → the nearest valid one) and, if given, must pass `is_valid`.
* **No re-measuring.** If the repaired child is visited, a new child is bred (new parents, new
  crossover, new mutation), up to `max_retries` times; then a random unvisited configuration is
  taken (random draws, then a walk over the whole space when it is small enough); if the space is
  exhausted, a visited configuration is returned.

Randomness comes from a `random.Random` seeded from (`seed`, trial number) — and the parameter
name in `sample_independent` — so the sampler is deterministic given the seed and the trial
history, and two workers never share a random stream.

The relative search space is the `search_space` given to the constructor (recommended: then even
the first trial of a fresh study is repaired), else the categorical parameters common to all
COMPLETE trials, else those of the finished trial with the most parameters. Parameters outside it
are sampled independently at random (non-categorical ones by Optuna's `RandomSampler`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["CANDIDATE_ATTR", "GeneticSampler"]

# The trial system attribute holding the configuration sample_relative chose for the trial.
CANDIDATE_ATTR = "GeneticSampler:candidate"
_FIXED_PARAMS_ATTR = "fixed_params"  # where Optuna keeps the params of an enqueued trial
_ENUMERATION_LIMIT = 50_000  # walk the whole space in the random fallback up to this many configurations

Params = dict[str, Any]
Genome = tuple[int, ...]


class _Gene:
    """One knob: its name and ordered choices, with an exact (type-aware) value → index map."""

    def __init__(self, name: str, choices: Sequence[Any]) -> None:
        self.name = name
        self.choices = tuple(choices)
        # Keyed by (type, value) so that True and 1 (equal and hash-equal in Python) stay apart.
        self._index: dict[tuple[type, Any], int] = {}
        for i, choice in enumerate(self.choices):
            self._index.setdefault((type(choice), choice), i)

    def __len__(self) -> int:
        return len(self.choices)

    def index(self, value: Any) -> int | None:
        try:
            return self._index.get((type(value), value))
        except TypeError:  # unhashable value: not one of the choices
            return None


class GeneticSampler(optuna.samplers.BaseSampler):
    """A genetic algorithm over categorical knobs with repair and no re-measuring (see the module doc).

    Args:
        population_size: trials of the random initial population, and size of the parent pool.
        elite: the best trials that always stay in the parent pool (< population_size).
        tournament: pool members drawn per tournament (>= 1; 1 is uniform random selection).
        crossover_prob: probability of a uniform crossover (else the child copies a parent).
        mutation_prob: per-gene mutation probability; None: 1 / number of knobs.
        seed: seed of the random streams; None: a random seed.
        repair: maps any configuration (param name → encoded value) to the nearest valid one.
        max_retries: children bred per trial before falling back to a random unvisited one.
        is_valid: optional validity test of a (repaired) configuration; invalid ones are rejected.
        search_space: the knobs' distributions (e.g. `params.distributions(space)`), so that the
            sampler knows the space before any trial finished; None: inferred from the trials. Its
            choices must be those the objective passes to `suggest_categorical` (Optuna checks it).
    """

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
        if isinstance(population_size, bool) or not isinstance(population_size, int) or population_size < 2:
            raise ValueError(f"population_size must be an integer >= 2, got {population_size!r}")
        if isinstance(elite, bool) or not isinstance(elite, int) or not 0 <= elite < population_size:
            raise ValueError(
                f"elite must be an integer with 0 <= elite < population_size ({population_size}), got {elite!r}"
            )
        if isinstance(tournament, bool) or not isinstance(tournament, int) or tournament < 1:
            raise ValueError(f"tournament must be an integer >= 1, got {tournament!r}")
        if not _is_probability(crossover_prob):
            raise ValueError(f"crossover_prob must be a probability in [0, 1], got {crossover_prob!r}")
        if mutation_prob is not None and not _is_probability(mutation_prob):
            raise ValueError(f"mutation_prob must be None or a probability in [0, 1], got {mutation_prob!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be None or an integer, got {seed!r}")
        if repair is not None and not callable(repair):
            raise ValueError(f"repair must be None or a callable, got {repair!r}")
        if is_valid is not None and not callable(is_valid):
            raise ValueError(f"is_valid must be None or a callable, got {is_valid!r}")
        if search_space is not None:
            for name, dist in search_space.items():
                if not isinstance(dist, CategoricalDistribution):
                    raise ValueError(f"search_space[{name!r}] must be a CategoricalDistribution, got {dist!r}")

        self.population_size = population_size
        self.elite = elite
        self.tournament = tournament
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = None if mutation_prob is None else float(mutation_prob)
        self.max_retries = max_retries
        self.repair = repair
        self.is_valid = is_valid
        self._search_space: dict[str, CategoricalDistribution] | None = (
            None if search_space is None else {name: search_space[name] for name in sorted(search_space)}
        )
        self._seed = seed if seed is not None else random.SystemRandom().getrandbits(32)
        self._random_sampler = optuna.samplers.RandomSampler(seed=self._seed % 2**32)

    # -- Optuna's sampler interface ---------------------------------------------------------------

    def reseed_rng(self) -> None:
        self._seed = random.SystemRandom().getrandbits(32)
        self._random_sampler.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self._search_space is not None:
            return dict(self._search_space)
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if complete:
            space: dict[str, BaseDistribution] = {
                name: dist
                for name, dist in complete[0].distributions.items()
                if isinstance(dist, CategoricalDistribution)
            }
            for t in complete[1:]:
                space = {name: dist for name, dist in space.items() if t.distributions.get(name) == dist}
        else:
            finished = [t for t in trials if t.state in (TrialState.FAIL, TrialState.PRUNED)]
            if not finished:
                return {}
            widest = max(finished, key=lambda t: (len(t.distributions), -t.number))
            space = {
                name: dist for name, dist in widest.distributions.items() if isinstance(dist, CategoricalDistribution)
            }
        return {name: space[name] for name in sorted(space)}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        genes = [
            _Gene(name, dist.choices)
            for name, dist in sorted(search_space.items())
            if isinstance(dist, CategoricalDistribution)
        ]
        if not genes:
            return {}
        self._raise_error_if_multi_objective(study)
        params = _Search(self, study, trial, genes).run()
        # Announce the choice at once, so that concurrent workers treat it as visited.
        study._storage.set_trial_system_attr(trial._trial_id, CANDIDATE_ATTR, dict(params))
        return params

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        if isinstance(param_distribution, CategoricalDistribution):
            rng = random.Random(f"GeneticSampler:{self._seed}:{trial.number}:{param_name}")
            return param_distribution.choices[rng.randrange(len(param_distribution.choices))]
        return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)

    # -- helpers used by _Search --------------------------------------------------------------------

    def _trial_rng(self, trial: FrozenTrial) -> random.Random:
        return random.Random(f"GeneticSampler:{self._seed}:{trial.number}")


def _is_probability(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0.0 <= value <= 1.0
    )


class _Search:
    """The choice of one trial's configuration: everything derived from the study's trials."""

    def __init__(self, sampler: GeneticSampler, study: Study, trial: FrozenTrial, genes: list[_Gene]) -> None:
        self.sampler = sampler
        self.genes = genes
        self.rng = sampler._trial_rng(trial)
        n = len(genes)
        self.mutation_prob = sampler.mutation_prob if sampler.mutation_prob is not None else 1.0 / n

        # Params this trial already has (enqueued ones, or suggested before sampling) are pinned.
        pinned: Params = {**trial.system_attrs.get(_FIXED_PARAMS_ATTR, {}), **trial.params}
        self.pinned = {
            g.name: pinned[g.name] for g in genes if g.name in pinned and g.index(pinned[g.name]) is not None
        }

        trials = study.get_trials(deepcopy=False)
        self.visited: set[tuple[int | None, ...]] = set()
        complete: list[tuple[float, int, Genome]] = []
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        self.finished = 0
        for t in trials:
            if t.number == trial.number:
                continue
            config: Params = {
                **t.system_attrs.get(CANDIDATE_ATTR, {}),
                **t.system_attrs.get(_FIXED_PARAMS_ATTR, {}),
                **t.params,
            }
            self.visited.add(self._key(config))
            if t.state in (TrialState.COMPLETE, TrialState.FAIL):
                self.finished += 1
            if t.state == TrialState.COMPLETE and t.value is not None and not math.isnan(t.value):
                genome = self._genome(t.params)
                if genome is not None:
                    complete.append((sign * t.value, t.number, genome))
        complete.sort()
        # The parent pool: the best population_size complete trials (the elite best always among them).
        self.pool = [genome for _, _, genome in complete[: sampler.population_size]]

    # -- encoding ---------------------------------------------------------------------------------

    def _key(self, config: Mapping[str, Any]) -> tuple[int | None, ...]:
        return tuple(g.index(config[g.name]) if g.name in config else None for g in self.genes)

    def _genome(self, config: Mapping[str, Any]) -> Genome | None:
        key = self._key(config)
        return None if any(i is None for i in key) else key

    def _params(self, genome: Genome) -> Params:
        return {g.name: g.choices[i] for g, i in zip(self.genes, genome, strict=True)}

    # -- the search -------------------------------------------------------------------------------

    def run(self) -> Params:
        fallback: Params | None = None
        if self.finished >= self.sampler.population_size and self.pool:
            for _ in range(self.sampler.max_retries):
                child = self._finalize(self._breed())
                if child is None:
                    continue
                if self._key(child) not in self.visited:
                    return child
                fallback = fallback or child
        found, candidate = self._random_unvisited()
        if found or fallback is None:
            return candidate
        return fallback

    def _finalize(self, genome: Genome, strict: bool = True) -> Params | None:
        """The repaired configuration of a genome, pinned params kept.

        strict: None when the repair had to move a pinned param or `is_valid` rejects the result;
        not strict: the pinned params are put back, whatever the result.
        """
        params = {**self._params(genome), **self.pinned}
        repair = self.sampler.repair
        if repair is not None:
            repaired = repair(dict(params))
            if not isinstance(repaired, Mapping):
                raise TypeError(f"repair must return a dict of params, got {type(repaired).__name__}")
            params = {g.name: repaired.get(g.name, params[g.name]) for g in self.genes}
            for g in self.genes:
                if g.index(params[g.name]) is None:
                    raise ValueError(f"repair returned {params[g.name]!r} for {g.name!r}, not one of {list(g.choices)}")
            if any(params[name] != value for name, value in self.pinned.items()):
                if strict:
                    return None
                params.update(self.pinned)
        is_valid = self.sampler.is_valid
        if strict and is_valid is not None and not is_valid(dict(params)):
            return None
        return params

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

    def _random_genome(self) -> Genome:
        return tuple(self.rng.randrange(len(g)) for g in self.genes)

    def _random_unvisited(self) -> tuple[bool, Params]:
        """(True, a random unvisited valid configuration), or (False, some configuration) if none was found."""
        last: Params | None = None
        for _ in range(max(self.sampler.max_retries, 1)):
            params = self._finalize(self._random_genome())
            if params is None:
                continue
            if self._key(params) not in self.visited:
                return True, params
            last = last or params
        sizes = [len(g) for g in self.genes]
        total = math.prod(sizes)
        if total <= _ENUMERATION_LIMIT:
            # Walk the whole space from a random start: finds an unvisited configuration if any is left.
            start = self.rng.randrange(total)
            for offset in range(total):
                genome = _unrank((start + offset) % total, sizes)
                params = self._finalize(genome)
                if params is None:
                    continue
                if self._key(params) not in self.visited:
                    return True, params
                last = last or params
        if last is not None:
            return False, last
        # Nothing valid found at all: a random configuration, repaired as far as the pinned params allow.
        params = self._finalize(self._random_genome(), strict=False)
        assert params is not None
        return False, params


def _unrank(rank: int, sizes: Sequence[int]) -> Genome:
    """The genome number `rank` in the mixed-radix (row-major) order of a space with these domain sizes."""
    digits = []
    for size in reversed(sizes):
        rank, digit = divmod(rank, size)
        digits.append(digit)
    return tuple(reversed(digits))
