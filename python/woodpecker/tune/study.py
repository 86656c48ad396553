"""The sampler's view of one workload: an in-memory Optuna study that mirrors the database.

The tuning database (`woodpecker.database`) is where trials live; Optuna is only the samplers'
backend. Per workload a worker keeps a `SearchStudy`: an Optuna study in an `InMemoryStorage`
with the strategy's sampler, into which `sync` adds every trial the database finished since the
last look (`trials(keys, since=cursor)`: the other workers' results, or on a resumed run all of
them) as a finished Optuna trial, so GA, RL and TPE see every result of every worker. The
worker's own trials are asked from and told to the same study. Trial numbers differ between
the two (the study also holds the proposals that were refused, as PRUNED trials); the
database's number of a trial is its `number` user attribute.

`propose` gives the next configuration to claim: valid (repaired), and neither finished nor
claimed as far as this worker knows (`visited`); the database's claim is the final word.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from woodpecker.database import COMPLETE, RUNNING, Trial, TuningDatabase, config_key
from woodpecker.kernels.space import Config, SearchSpace
from woodpecker.kernels.task import KernelTask, MeasureResult
from woodpecker.tune.params import decode, distributions, encode

NUMBER_ATTR = "number"  # the database's trial number, on the study's trials
_MAX_PROPOSALS = 20  # sampler proposals in a row that were all visited: then a random valid one
_RANDOM_DRAWS = 200


def make_sampler(strategy: str, space: SearchSpace, seed: int | None, trials: int = 32) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of a strategy over `space` (`trials`: the budget, sizing GA and RL)."""
    if strategy == "ga":
        from woodpecker.tune.genetic import GeneticSampler

        return GeneticSampler(
            population_size=population_size(trials),
            seed=seed,
            repair=lambda params: encode(space.repair(decode(params))),
            search_space=distributions(space),
        )
    if strategy == "rl":
        from woodpecker.tune.reinforce import ReinforceSampler

        return ReinforceSampler(
            batch_size=max(4, min(8, trials // 4)),
            seed=seed,
            repair=lambda params: encode(space.repair(decode(params))),
            search_space=distributions(space),
        )
    if strategy == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8)
    return optuna.samplers.RandomSampler(seed=seed)


def population_size(trials: int) -> int:
    """The GA's population for a budget of `trials`: a third of it, between 6 and 16 (a few
    generations even on small budgets)."""
    return max(6, min(16, trials // 3))


@dataclass
class SearchStudy:
    """One workload's sampler study, kept in step with the database."""

    db: TuningDatabase
    task: KernelTask
    space: SearchSpace
    strategy: str
    study: optuna.Study
    dists: dict[str, CategoricalDistribution]
    cursor: int = 0  # the last finish sequence number synced (Trial.seq)
    known: set[int] = field(default_factory=set)  # database trial numbers already in the study
    visited: set[str] = field(default_factory=set)  # config keys finished, claimed or refused
    finished: int = 0  # finished trials of the workload seen so far
    failures: int = 0
    default_seconds: float | None = None  # the default configuration's recorded time
    has_default: bool = False  # the default configuration has a trial (finished or claimed)

    @classmethod
    def open(
        cls, db: TuningDatabase, task: KernelTask, space: SearchSpace, strategy: str, seed: int | None, trials: int
    ) -> SearchStudy:
        """A fresh study with the strategy's sampler, synced with every trial of the workload
        (running claims included, as visited)."""
        study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            direction="minimize",
            sampler=make_sampler(strategy, space, seed, trials),
        )
        state = cls(db, task, space, strategy, study, distributions(space))
        for trial in db.trials([task.key]).get(task.key, []):
            if trial.state == RUNNING:
                state.visited.add(trial.config_key)
                state.has_default |= trial.is_default
            else:
                state.add(trial)
        return state

    def sync(self) -> int:
        """Adds the trials the database finished since the last sync; returns how many."""
        added = 0
        for trial in self.db.trials([self.task.key], since=self.cursor).get(self.task.key, []):
            added += self.add(trial)
        return added

    def add(self, trial: Trial) -> bool:
        """Adds one finished database trial (once) to the study."""
        if trial.seq is not None:
            self.cursor = max(self.cursor, trial.seq)
        if trial.number in self.known or not trial.finished:
            return False
        self._count(trial)
        params = encode(trial.config)
        if set(params) == set(self.dists) and all(v in self.dists[k].choices for k, v in params.items()):
            complete = trial.state == COMPLETE
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=self.dists,
                    value=trial.seconds if complete else None,
                    state=TrialState.COMPLETE if complete else TrialState.FAIL,
                    user_attrs=_attrs(trial),
                )
            )
        # else: a configuration of another version of the space (it stays visited, not sampled from)
        return True

    def _count(self, trial: Trial) -> None:
        self.known.add(trial.number)
        self.visited.add(trial.config_key)
        self.finished += 1
        self.failures += trial.state != COMPLETE
        if trial.is_default:
            self.has_default = True
            if trial.state == COMPLETE and self.default_seconds is None:
                self.default_seconds = trial.seconds

    # -- proposing ---------------------------------------------------------------------------
    def propose(self, rng: random.Random) -> tuple[Config | None, optuna.Trial | None]:
        """The next configuration to claim, unvisited and valid, with the study's open trial
        that proposed it (None for random search); (None, None) when none is left."""
        if self.strategy != "random":
            for _ in range(_MAX_PROPOSALS):
                trial = self.study.ask(self.dists)
                config = self.space.repair(decode(trial.params))
                if config_key(config) not in self.visited:
                    return config, trial
                self.study.tell(trial, state=TrialState.PRUNED)  # visited (TPE converging)
        # Random search, and the way out when the sampler only proposes what was measured.
        for _ in range(_RANDOM_DRAWS):
            config = self.space.sample(rng)
            if config_key(config) not in self.visited:
                return config, None
        return None, None

    def refused(self, config: Config, trial: optuna.Trial | None) -> None:
        """The database refused the claim of `config` (another worker has it): never again."""
        self.visited.add(config_key(config))
        if trial is not None:
            self.study.tell(trial, state=TrialState.PRUNED)

    def abandon(self, trial: optuna.Trial | None) -> None:
        """Closes a proposal that will not be measured (the search stops)."""
        if trial is not None:
            self.study.tell(trial, state=TrialState.PRUNED)

    def record(self, finished: Trial, result: MeasureResult, trial: optuna.Trial | None) -> None:
        """Tells the study this worker's own finished trial (the proposal's trial when its
        params are the configuration measured, else a new one; the proposal is PRUNED)."""
        if finished.seq is not None and finished.seq == self.cursor + 1:
            self.cursor = finished.seq  # nobody finished anything in between: nothing to re-read
        self._count(finished)
        params = encode(finished.config)
        if trial is not None and trial.params != params:
            self.study.tell(trial, state=TrialState.PRUNED)
            trial = None
        if trial is None:
            self.study.enqueue_trial(params)
            trial = self.study.ask(self.dists)
        for name, value in _attrs(finished).items():
            trial.set_user_attr(name, value)
        if finished.state == COMPLETE:
            self.study.tell(trial, finished.seconds)
        else:
            self.study.tell(trial, state=TrialState.FAIL)


def _attrs(trial: Trial) -> dict:
    """What the samplers and readers of the study see of a database trial."""
    attrs: dict = {NUMBER_ATTR: trial.number, "strategy": trial.strategy}
    if trial.is_default:
        attrs["is_default"] = True
    return attrs
