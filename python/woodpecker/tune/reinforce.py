"""A reinforcement-learning (REINFORCE policy-gradient) search strategy for schedule knobs, as an Optuna sampler.

Every schedule knob is an Optuna `CategoricalDistribution` over a finite, *ordered* domain (see
`woodpecker.tune.params`). The sampler minimizes the trial value (seconds; a maximizing study is
handled by flipping the sign of the reward).

The agent's policy is a product of independent categorical distributions, one per knob, each a
softmax over one logit per value of the knob's domain. Like `woodpecker.tune.genetic`, the sampler
keeps no state in memory: the policy is rebuilt from the study's trial history at every call, so
that several processes sharing one study (and `study.enqueue_trial`) work:

* **Replay.** Start from zero logits (the uniform policy) and replay the finished trials (COMPLETE
  or FAIL, with a value for every knob) in trial-number order, in consecutive batches of
  `batch_size`; an incomplete last batch waits until it fills up. Pruned and running trials give
  no reward.
* **Reward.** A COMPLETE trial's reward is ``-log(value)`` (``+log(value)`` in a maximizing study),
  values below 1e-12 counting as 1e-12. A FAIL trial (or a COMPLETE one with a NaN or infinite
  value) gets the worst reward of its batch minus 1.
* **Advantage.** Each reward is compared with a moving baseline, the exponential moving average of
  the batches' mean rewards, the current batch included (``b ← baseline_decay·b + (1 -
  baseline_decay)·mean``, started at the first batch's mean; `baseline_decay` 0 centres each batch
  on its own mean), and divided by the standard deviation of the batch's rewards (not rescaled
  when they are all equal); advantages are clipped to ±3. A batch with no COMPLETE trial gives
  every trial the fixed advantage -1 (and leaves the baseline alone).
* **Update.** For every knob, with ``p = softmax(z)`` the knob's current probabilities, the logits
  ``z`` move by ``learning_rate`` times the batch mean of ``advantage · ∇ log p(chosen value)`` =
  ``advantage · (onehot(chosen) - p)``, plus ``entropy`` times the gradient of the knob's entropy
  ``-p·(log p + H)``, which keeps the policy from collapsing too early.
* **Warm-up.** While fewer than `warmup` trials (default: `batch_size`) are finished, each new
  trial is a uniformly random configuration, repaired, and not visited.
* **Sampling.** Afterwards each knob's value is drawn from the rebuilt policy (temperature 1), the
  configuration goes through `repair` (any configuration → the nearest valid one) and, if given,
  must pass `is_valid`. If it was visited, it is drawn again, up to `max_retries` times; then a
  random unvisited configuration is taken (random draws, then a walk over the whole space when it
  is small enough); if the space is exhausted, a visited configuration is returned.
* **Visited configurations.** Every trial of the study, in any state (complete, failed, pruned,
  running in another worker, waiting in the queue), marks its configuration as visited, so nothing
  is measured twice. A configuration chosen by `sample_relative` is also written at once to the
  trial's system attribute `ReinforceSampler:candidate`, so that other workers see it as visited
  before the objective has suggested all its parameters (the `GeneticSampler`'s candidates count
  too).

The defaults (batches of 8, learning rate 3, baseline decay 0.5, entropy bonus 0.01) were chosen on
synthetic landscapes of 500 to 260,000 configurations with budgets of 60 to 200 trials: with a
learning rate of 0.5 the policy barely moves in such budgets, above about 4 it collapses on its
first good batch; a slow baseline (decay 0.8) lags behind an improving policy, so that whole
batches get positive advantages and the policy narrows whatever their quality.

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

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from woodpecker.tune.genetic import _ENUMERATION_LIMIT, _FIXED_PARAMS_ATTR, _Gene, _is_probability, _unrank
from woodpecker.tune.genetic import CANDIDATE_ATTR as GENETIC_CANDIDATE_ATTR

__all__ = ["CANDIDATE_ATTR", "ReinforceSampler"]

# The trial system attribute holding the configuration sample_relative chose for the trial.
CANDIDATE_ATTR = "ReinforceSampler:candidate"
_CANDIDATE_ATTRS = (GENETIC_CANDIDATE_ATTR, CANDIDATE_ATTR)  # the choices of both samplers are visited
_VALUE_FLOOR = 1e-12  # values below count as this (the reward is -log(value))
_FAIL_ADVANTAGE = -1.0  # advantage of the trials of a batch without any COMPLETE trial
_ADVANTAGE_CLIP = 3.0  # advantages are clipped to [-_ADVANTAGE_CLIP, _ADVANTAGE_CLIP]
_MIN_SCALE = 1e-12  # a batch whose rewards spread less than this is not rescaled

Params = dict[str, Any]
Genome = tuple[int, ...]


class ReinforceSampler(optuna.samplers.BaseSampler):
    """A REINFORCE policy-gradient agent over categorical knobs with repair and no re-measuring (see the module doc).

    Args:
        batch_size: finished trials per policy update (>= 1).
        learning_rate: step size of the logit updates (> 0).
        baseline_decay: decay of the moving-average reward baseline, in [0, 1] (0: the batch mean).
        entropy: weight of the entropy bonus (>= 0).
        warmup: finished trials before the policy is used (uniform random ones until then);
            None: `batch_size`.
        seed: seed of the random streams; None: a random seed.
        repair: maps any configuration (param name → encoded value) to the nearest valid one.
        is_valid: optional validity test of a (repaired) configuration; invalid ones are rejected.
        search_space: the knobs' distributions (e.g. `params.distributions(space)`), so that the
            sampler knows the space before any trial finished; None: inferred from the trials. Its
            choices must be those the objective passes to `suggest_categorical` (Optuna checks it).
        max_retries: policy draws per trial before falling back to a random unvisited configuration.
    """

    def __init__(
        self,
        *,
        batch_size: int = 8,
        learning_rate: float = 3.0,
        baseline_decay: float = 0.5,
        entropy: float = 0.01,
        warmup: int | None = None,
        seed: int | None = None,
        repair: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        is_valid: Callable[[dict[str, Any]], bool] | None = None,
        search_space: Mapping[str, BaseDistribution] | None = None,
        max_retries: int = 50,
    ) -> None:
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not _is_finite(learning_rate) or learning_rate <= 0:
            raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
        if not _is_probability(baseline_decay):
            raise ValueError(f"baseline_decay must be a number in [0, 1], got {baseline_decay!r}")
        if not _is_finite(entropy) or entropy < 0:
            raise ValueError(f"entropy must be a finite number >= 0, got {entropy!r}")
        if warmup is not None and (not _is_int(warmup) or warmup < 0):
            raise ValueError(f"warmup must be None or an integer >= 0, got {warmup!r}")
        if seed is not None and not _is_int(seed):
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
        if not _is_int(max_retries) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")

        self.batch_size = batch_size
        self.learning_rate = float(learning_rate)
        self.baseline_decay = float(baseline_decay)
        self.entropy = float(entropy)
        self.warmup = batch_size if warmup is None else warmup
        self.repair = repair
        self.is_valid = is_valid
        self.max_retries = max_retries
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
        return dict(self._space(study))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        genes = _genes(search_space)
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
            rng = random.Random(f"ReinforceSampler:{self._seed}:{trial.number}:{param_name}")
            return param_distribution.choices[rng.randrange(len(param_distribution.choices))]
        return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)

    # -- introspection ----------------------------------------------------------------------------

    def policy(self, study: Study) -> dict[str, np.ndarray]:
        """The policy rebuilt from the study's history: per knob, the probabilities of its choices (in domain order).

        This is the policy the next trial's configuration would be drawn from (once the warm-up is over).
        """
        genes = _genes(self._space(study))
        logits = _replay(self, study.get_trials(deepcopy=False), genes, _sign(study), exclude=None)
        return {g.name: _softmax(z) for g, z in zip(genes, logits, strict=True)}

    # -- helpers ----------------------------------------------------------------------------------

    def _space(self, study: Study) -> dict[str, BaseDistribution]:
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
        return random.Random(f"ReinforceSampler:{self._seed}:{trial.number}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _sign(study: Study) -> float:
    """+1 for a minimizing study, -1 for a maximizing one."""
    return -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0


def _genes(search_space: Mapping[str, BaseDistribution]) -> list[_Gene]:
    return [
        _Gene(name, dist.choices)
        for name, dist in sorted(search_space.items())
        if isinstance(dist, CategoricalDistribution)
    ]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _genome(genes: Sequence[_Gene], config: Mapping[str, Any]) -> Genome | None:
    """The choice indices of a configuration, or None if it lacks a knob or has a value outside a domain."""
    key = tuple(g.index(config[g.name]) if g.name in config else None for g in genes)
    return None if any(i is None for i in key) else key  # type: ignore[return-value]


def _reward(value: float | None, sign: float) -> float | None:
    """-log(value) (+log(value) when maximizing); None for a missing, NaN or infinite value (a failure)."""
    if value is None or not math.isfinite(value):
        return None
    return -sign * math.log(max(value, _VALUE_FLOOR))


def _replay(
    sampler: ReinforceSampler, trials: Sequence[FrozenTrial], genes: Sequence[_Gene], sign: float, exclude: int | None
) -> list[np.ndarray]:
    """The policy's logits (one array per gene) after replaying the finished trials' batches (see the module doc)."""
    logits = [np.zeros(len(g)) for g in genes]
    if not genes:
        return logits
    # (chosen genome, reward or None for a failure) of the finished trials, in trial-number order.
    events: list[tuple[Genome, float | None]] = []
    for t in sorted(trials, key=lambda t: t.number):
        if t.number == exclude or t.state not in (TrialState.COMPLETE, TrialState.FAIL):
            continue
        genome = _genome(genes, t.params)
        if genome is None:
            continue
        events.append((genome, _reward(t.value, sign) if t.state == TrialState.COMPLETE else None))

    size = sampler.batch_size
    baseline: float | None = None
    for start in range(0, len(events) - size + 1, size):
        batch = events[start : start + size]
        rewards = [r for _, r in batch if r is not None]
        if rewards:
            worst = min(rewards) - 1.0
            r = np.array([worst if reward is None else reward for _, reward in batch])
            mean = float(r.mean())
            decay = sampler.baseline_decay
            baseline = mean if baseline is None else decay * baseline + (1.0 - decay) * mean
            scale = float(r.std())
            advantages = (r - baseline) / (scale if scale > _MIN_SCALE else 1.0)
            advantages = np.clip(advantages, -_ADVANTAGE_CLIP, _ADVANTAGE_CLIP)
        else:
            advantages = np.full(len(batch), _FAIL_ADVANTAGE)
        for pos, z in enumerate(logits):
            p = _softmax(z)
            grad = np.zeros_like(z)
            for (genome, _), advantage in zip(batch, advantages, strict=True):
                grad[genome[pos]] += advantage
            grad -= advantages.sum() * p  # Σ advantage · (onehot(chosen) - p)
            grad /= len(batch)
            if sampler.entropy > 0.0:
                log_p = np.log(np.maximum(p, 1e-300))
                h = -float(np.dot(p, log_p))
                grad += sampler.entropy * (-p * (log_p + h))
            z += sampler.learning_rate * grad
    return logits


class _Search:
    """The choice of one trial's configuration: everything derived from the study's trials."""

    def __init__(self, sampler: ReinforceSampler, study: Study, trial: FrozenTrial, genes: list[_Gene]) -> None:
        self.sampler = sampler
        self.genes = genes
        self.rng = sampler._trial_rng(trial)

        # Params this trial already has (enqueued ones, or suggested before sampling) are pinned.
        pinned: Params = {**trial.system_attrs.get(_FIXED_PARAMS_ATTR, {}), **trial.params}
        self.pinned = {
            g.name: pinned[g.name] for g in genes if g.name in pinned and g.index(pinned[g.name]) is not None
        }

        trials = study.get_trials(deepcopy=False)
        self.visited: set[tuple[int | None, ...]] = set()
        self.finished = 0
        for t in trials:
            if t.number == trial.number:
                continue
            config: Params = {}
            for attr in _CANDIDATE_ATTRS:
                config.update(t.system_attrs.get(attr, {}))
            config.update(t.system_attrs.get(_FIXED_PARAMS_ATTR, {}))
            config.update(t.params)
            self.visited.add(self._key(config))
            if t.state in (TrialState.COMPLETE, TrialState.FAIL):
                self.finished += 1
        self.trials = trials
        self.sign = _sign(study)
        self.exclude = trial.number

    # -- encoding ---------------------------------------------------------------------------------

    def _key(self, config: Mapping[str, Any]) -> tuple[int | None, ...]:
        return tuple(g.index(config[g.name]) if g.name in config else None for g in self.genes)

    def _params(self, genome: Genome) -> Params:
        return {g.name: g.choices[i] for g, i in zip(self.genes, genome, strict=True)}

    # -- the search -------------------------------------------------------------------------------

    def run(self) -> Params:
        fallback: Params | None = None
        if self.finished >= self.sampler.warmup:
            logits = _replay(self.sampler, self.trials, self.genes, self.sign, exclude=self.exclude)
            cumulative = [np.cumsum(_softmax(z)) for z in logits]
            for _ in range(self.sampler.max_retries):
                candidate = self._finalize(self._draw(cumulative))
                if candidate is None:
                    continue
                if self._key(candidate) not in self.visited:
                    return candidate
                fallback = fallback or candidate
        found, candidate = self._random_unvisited()
        if found or fallback is None:
            return candidate
        return fallback

    def _draw(self, cumulative: Sequence[np.ndarray]) -> Genome:
        """A genome drawn from the policy (given as each gene's cumulative probabilities)."""
        genome = []
        for cdf in cumulative:
            u = self.rng.random() * float(cdf[-1])
            genome.append(min(int(np.searchsorted(cdf, u, side="right")), len(cdf) - 1))
        return tuple(genome)

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
        if total <= _ENUMERATION_LIMIT:
            # Walk the whole space from a random start: finds an unvisited configuration if any is left.
            start = self.rng.randrange(total)
            for offset in range(total):
                params = self._finalize(_unrank((start + offset) % total, sizes))
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
