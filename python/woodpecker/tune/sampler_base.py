"""What Woodpecker's Optuna samplers over schedule knobs share: `KnobSampler` and `KnobSearch`.

`woodpecker.tune.genetic.GeneticSampler` (a genetic algorithm) and
`woodpecker.tune.reinforce.ReinforceSampler` (a REINFORCE policy gradient) differ only in how they
propose a configuration; everything around the proposal lives here.

Every schedule knob is an Optuna `CategoricalDistribution` over a finite, *ordered* domain (see
`woodpecker.tune.params`). A configuration is a genome: one gene per knob, the gene being the index
of the knob's value in its domain. The samplers minimize the trial value (seconds; a maximizing
study is handled by flipping its sign).

A `KnobSampler` keeps no state in memory: each trial's configuration is derived from the study's
trial history alone, so that several processes sharing one study (and `study.enqueue_trial`) work:

* **Visited configurations.** Every trial of the study, in any state (complete, failed, pruned,
  running in another worker, waiting in the queue), marks its configuration as visited; a visited
  configuration is never proposed again while an unvisited one can be found, so nothing is measured
  twice. A configuration chosen by `sample_relative` is also written at once to the trial's system
  attribute `candidate_attr` (e.g. ``GeneticSampler:candidate``), so that other workers see it as
  visited before the objective has suggested all its parameters; `visited_attrs` names the
  attributes (of this and other samplers) read back.
* **Pinned parameters.** The parameters a trial already has (an enqueued trial's, or ones suggested
  before sampling) are kept; a proposal whose repair would move one of them is rejected.
* **Repair.** Knobs have constraints between them: every candidate goes through the `repair`
  callable (any configuration → the nearest valid one) and, if given, must pass `is_valid`.
* **No re-measuring.** The subclass's proposal (`KnobSearch._proposer`) is tried up to
  `max_retries` times until it gives an unvisited valid configuration; then (and while the subclass
  has no proposal yet, e.g. during a warm-up) a random unvisited configuration is taken (random
  draws, then a walk over the whole space when it is small enough); if the space is exhausted, a
  visited configuration is returned.

Randomness comes from a `random.Random` seeded from (`seed`, trial number) — and the parameter
name in `sample_independent` — so a sampler is deterministic given the seed and the trial history,
and two workers never share a random stream.

The relative search space is the `search_space` given to the constructor (recommended: then even
the first trial of a fresh study is repaired), else the categorical parameters common to all
COMPLETE trials, else those of the finished trial with the most parameters. Parameters outside it
are sampled independently at random (non-categorical ones by Optuna's `RandomSampler`).
"""

from __future__ import annotations

import abc
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "ENUMERATION_LIMIT",
    "FIXED_PARAMS_ATTR",
    "Gene",
    "Genome",
    "KnobSampler",
    "KnobSearch",
    "Params",
    "genes_of",
    "genome_of",
    "is_finite",
    "is_int",
    "is_probability",
    "study_sign",
    "unrank",
]

FIXED_PARAMS_ATTR = "fixed_params"  # where Optuna keeps the params of an enqueued trial
ENUMERATION_LIMIT = 50_000  # walk the whole space in the random fallback up to this many configurations

Params = dict[str, Any]
Genome = tuple[int, ...]


class Gene:
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


class KnobSampler(optuna.samplers.BaseSampler):
    """Base of the samplers over categorical knobs with repair and no re-measuring (see the module doc).

    A subclass sets the class attributes `name`, `candidate_attr` and `visited_attrs`, validates its
    own arguments, calls ``super().__init__`` with the common ones, and implements `_search`, which
    returns its `KnobSearch` subclass for one trial.

    Args (common to all the samplers):
        seed: seed of the random streams; None: a random seed.
        repair: maps any configuration (param name → encoded value) to the nearest valid one.
        is_valid: optional validity test of a (repaired) configuration; invalid ones are rejected.
        search_space: the knobs' distributions (e.g. `params.distributions(space)`), so that the
            sampler knows the space before any trial finished; None: inferred from the trials. Its
            choices must be those the objective passes to `suggest_categorical` (Optuna checks it).
        max_retries: proposals per trial before falling back to a random unvisited configuration.
    """

    name: ClassVar[str]  # the prefix of the random streams' seeds, e.g. "GeneticSampler"
    candidate_attr: ClassVar[str]  # the trial system attribute holding the configuration chosen for it
    visited_attrs: ClassVar[tuple[str, ...]]  # the candidate attributes that mark a configuration as visited

    def __init__(
        self,
        *,
        seed: int | None,
        repair: Callable[[dict[str, Any]], dict[str, Any]] | None,
        is_valid: Callable[[dict[str, Any]], bool] | None,
        search_space: Mapping[str, BaseDistribution] | None,
        max_retries: int,
    ) -> None:
        if seed is not None and not is_int(seed):
            raise ValueError(f"seed must be None or an integer, got {seed!r}")
        if repair is not None and not callable(repair):
            raise ValueError(f"repair must be None or a callable, got {repair!r}")
        if is_valid is not None and not callable(is_valid):
            raise ValueError(f"is_valid must be None or a callable, got {is_valid!r}")
        if search_space is not None:
            if not isinstance(search_space, Mapping):
                raise ValueError(f"search_space must be None or a mapping, got {search_space!r}")
            for name, dist in search_space.items():
                if not isinstance(dist, CategoricalDistribution):
                    raise ValueError(f"search_space[{name!r}] must be a CategoricalDistribution, got {dist!r}")
        if not is_int(max_retries) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")

        self.repair = repair
        self.is_valid = is_valid
        self.max_retries = max_retries
        self._search_space: dict[str, CategoricalDistribution] | None = (
            None if search_space is None else {name: search_space[name] for name in sorted(search_space)}
        )
        self._seed = seed if seed is not None else random.SystemRandom().getrandbits(32)
        self._random_sampler = optuna.samplers.RandomSampler(seed=self._seed % 2**32)

    # -- what a subclass implements -----------------------------------------------------------------

    @abc.abstractmethod
    def _search(self, study: Study, trial: FrozenTrial, genes: list[Gene]) -> KnobSearch:
        """The search that chooses `trial`'s configuration of these knobs."""

    # -- Optuna's sampler interface ---------------------------------------------------------------

    def reseed_rng(self) -> None:
        self._seed = random.SystemRandom().getrandbits(32)
        self._random_sampler.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._space(study))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        genes = genes_of(search_space)
        if not genes:
            return {}
        self._raise_error_if_multi_objective(study)
        params = self._search(study, trial, genes).run()
        # Announce the choice at once, so that concurrent workers treat it as visited.
        study._storage.set_trial_system_attr(trial._trial_id, self.candidate_attr, dict(params))
        return params

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        if isinstance(param_distribution, CategoricalDistribution):
            rng = random.Random(f"{self.name}:{self._seed}:{trial.number}:{param_name}")
            return param_distribution.choices[rng.randrange(len(param_distribution.choices))]
        return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)

    # -- helpers ----------------------------------------------------------------------------------

    def _space(self, study: Study) -> dict[str, BaseDistribution]:
        """The relative search space: the given one, else inferred from the trials (see the module doc)."""
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

    def _trial_rng(self, trial: FrozenTrial) -> random.Random:
        return random.Random(f"{self.name}:{self._seed}:{trial.number}")


class KnobSearch:
    """The choice of one trial's configuration: everything derived from the study's trials.

    A subclass implements `_proposer`; it may read `trials` (the study's trials), `trial_number` (the
    trial being sampled, to be left out of any history), `sign` (+1 minimizing, -1 maximizing),
    `finished` (the other COMPLETE or FAIL trials), `visited`, `pinned` and `rng` (the trial's stream).
    """

    def __init__(self, sampler: KnobSampler, study: Study, trial: FrozenTrial, genes: list[Gene]) -> None:
        self.sampler = sampler
        self.genes = genes
        self.rng = sampler._trial_rng(trial)

        # Params this trial already has (enqueued ones, or suggested before sampling) are pinned.
        pinned: Params = {**trial.system_attrs.get(FIXED_PARAMS_ATTR, {}), **trial.params}
        self.pinned = {
            g.name: pinned[g.name] for g in genes if g.name in pinned and g.index(pinned[g.name]) is not None
        }

        self.trials = study.get_trials(deepcopy=False)
        self.trial_number = trial.number
        self.sign = study_sign(study)
        self.visited: set[tuple[int | None, ...]] = set()
        self.finished = 0
        for t in self.trials:
            if t.number == trial.number:
                continue
            config: Params = {}
            for attr in sampler.visited_attrs:
                config.update(t.system_attrs.get(attr, {}))
            config.update(t.system_attrs.get(FIXED_PARAMS_ATTR, {}))
            config.update(t.params)
            self.visited.add(self._key(config))
            if t.state in (TrialState.COMPLETE, TrialState.FAIL):
                self.finished += 1

    # -- what a subclass implements -----------------------------------------------------------------

    def _proposer(self) -> Callable[[], Genome] | None:
        """The subclass's proposal of a genome (called up to `max_retries` times), or None for none yet."""
        raise NotImplementedError

    # -- encoding ---------------------------------------------------------------------------------

    def _key(self, config: Mapping[str, Any]) -> tuple[int | None, ...]:
        return tuple(g.index(config[g.name]) if g.name in config else None for g in self.genes)

    def _genome(self, config: Mapping[str, Any]) -> Genome | None:
        return genome_of(self.genes, config)

    def _params(self, genome: Genome) -> Params:
        return {g.name: g.choices[i] for g, i in zip(self.genes, genome, strict=True)}

    # -- the search -------------------------------------------------------------------------------

    def run(self) -> Params:
        fallback: Params | None = None
        propose = self._proposer()
        if propose is not None:
            for _ in range(self.sampler.max_retries):
                candidate = self._finalize(propose())
                if candidate is None:
                    continue
                if self._key(candidate) not in self.visited:
                    return candidate
                fallback = fallback or candidate
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
        if total <= ENUMERATION_LIMIT:
            # Walk the whole space from a random start: finds an unvisited configuration if any is left.
            start = self.rng.randrange(total)
            for offset in range(total):
                params = self._finalize(unrank((start + offset) % total, sizes))
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


# -- small helpers --------------------------------------------------------------------------------


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_probability(value: object) -> bool:
    return is_finite(value) and 0.0 <= value <= 1.0  # type: ignore[operator]


def study_sign(study: Study) -> float:
    """+1 for a minimizing study, -1 for a maximizing one."""
    return -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0


def genes_of(search_space: Mapping[str, BaseDistribution]) -> list[Gene]:
    """The genes of the categorical distributions of a search space, in name order."""
    return [
        Gene(name, dist.choices)
        for name, dist in sorted(search_space.items())
        if isinstance(dist, CategoricalDistribution)
    ]


def genome_of(genes: Sequence[Gene], config: Mapping[str, Any]) -> Genome | None:
    """The choice indices of a configuration, or None if it lacks a knob or has a value outside a domain."""
    key = tuple(g.index(config[g.name]) if g.name in config else None for g in genes)
    return None if any(i is None for i in key) else key  # type: ignore[return-value]


def unrank(rank: int, sizes: Sequence[int]) -> Genome:
    """The genome number `rank` in the mixed-radix (row-major) order of a space with these domain sizes."""
    digits = []
    for size in reversed(sizes):
        rank, digit = divmod(rank, size)
        digits.append(digit)
    return tuple(reversed(digits))
