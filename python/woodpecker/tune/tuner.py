"""The search: one Optuna study per kernel signature, candidates measured by a Runner.

For each task the tuner opens (or resumes) the study named `task.key` in the storage,
measures the default configuration first (its output is the reference a candidate must
match, and its time is what speedups are relative to), then asks the strategy for candidates
until the study holds `trials` finished trials or the time budget is spent:

* `ga`: our `GeneticSampler`; it repairs invalid children and never proposes a visited one;
* `tpe`: Optuna's TPESampler; an invalid proposal is repaired to the nearest valid
  configuration (`SearchSpace.repair`), which is what gets measured and recorded;
* `random`: uniform over the valid configurations (rejection sampling), the baseline;
* `rl`: our `ReinforceSampler`, a policy-gradient agent (one softmax per knob, REINFORCE
  updates from batches of measured trials), the seed paper's second search method.

A configuration already measured in the study is never measured again. Every finished trial
is in the storage at once, so a killed run loses nothing: run the same command again and it
goes on where it stopped. Several processes may work on one storage at the same time.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from woodpecker.database.schema import config_key
from woodpecker.kernels.space import Config, SearchSpace
from woodpecker.kernels.task import KernelTask, MeasureResult, Runner
from woodpecker.tune.confirm import chosen_trial, confirm, confirmed_of, default_seconds
from woodpecker.tune.params import decode, distributions, encode, trial_config
from woodpecker.tune.storage import open_storage

STRATEGIES = ("ga", "tpe", "random", "rl")
_FINISHED = (TrialState.COMPLETE, TrialState.FAIL)
_MAX_PROPOSALS = 20  # proposals in a row that were all visited before: then a random valid one


@dataclass
class TuneOptions:
    """How long and how to search each kernel."""

    trials: int = 32  # finished trials per kernel study (the default's included)
    strategy: str = "ga"
    seed: int | None = None
    time_budget_s: float | None = None  # for all kernels together; None: no limit
    storage: str | None = None  # URL or path; None: the default (woodpecker.tune.storage)
    # After the search: re-measure the best `confirm_top` and the default, `confirm_rounds`
    # times interleaved, and record the confirmed fastest (woodpecker.tune.confirm).
    confirm_top: int = 3
    confirm_rounds: int = 3

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy '{self.strategy}'; strategies: {', '.join(STRATEGIES)}")
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        if self.confirm_top < 0 or self.confirm_rounds < 0:
            raise ValueError("confirm_top and confirm_rounds must be >= 0")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time budget must be > 0 seconds, got {self.time_budget_s}")


@dataclass
class TuneResult:
    """What tuning one kernel (signature) gave."""

    task: KernelTask
    default_seconds: float | None
    best_seconds: float | None
    best_config: Config | None
    trials: int  # finished trials in the study
    failures: int
    measured: int  # candidates measured by this run

    @property
    def speedup(self) -> float | None:
        if not self.default_seconds or not self.best_seconds:
            return None
        return self.default_seconds / self.best_seconds


@dataclass
class Progress:
    """Callbacks for progress display (woodpecker.tune.progress has tqdm bars)."""

    on_task_start: Callable[[KernelTask, int, int], None] = lambda task, done, total: None
    on_trial: Callable[[KernelTask, MeasureResult | None, int], None] = lambda task, result, done: None
    on_task_end: Callable[[TuneResult], None] = lambda result: None


@dataclass
class _Study:
    task: KernelTask
    space: SearchSpace
    study: optuna.Study
    dists: dict[str, CategoricalDistribution] = field(default_factory=dict)

    def finished(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=_FINISHED)

    def visited(self) -> dict[str, optuna.trial.FrozenTrial]:
        """Finished and running trials (another worker's, or exported for measuring elsewhere)
        by configuration."""
        trials = self.study.get_trials(deepcopy=False, states=(*_FINISHED, TrialState.RUNNING))
        return {config_key(c): t for t in trials if (c := trial_config(t)) is not None and c}


def population_size(trials: int) -> int:
    """The GA's population for a budget of `trials`: a third of it, between 6 and 16 (a few
    generations even on small budgets)."""
    return max(6, min(16, trials // 3))


def make_sampler(strategy: str, space: SearchSpace, seed: int | None, trials: int = 32) -> optuna.samplers.BaseSampler:
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


def open_study(
    task: KernelTask, space: SearchSpace, storage, strategy: str, seed: int | None, trials: int = 32
) -> _Study:
    study = optuna.create_study(
        study_name=task.key,
        storage=storage,
        direction="minimize",
        sampler=make_sampler(strategy, space, seed, trials),
        load_if_exists=True,
    )
    _describe(study, task)
    return _Study(task, space, study, distributions(space))


def open_study_for_records(task: KernelTask, storage) -> optuna.Study:
    """The task's study (created when missing) for storing other measurements than trials
    (woodpecker.select keeps its candidates' timings there)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per kernel
    try:
        study = optuna.create_study(study_name=task.key, storage=storage, direction="minimize", load_if_exists=True)
    finally:
        optuna.logging.set_verbosity(verbosity)
    _describe(study, task)
    return study


def _describe(study: optuna.Study, task: KernelTask) -> None:
    if "task" not in study.user_attrs:
        fields = asdict(task)
        del fields["module_text"]
        study.set_user_attr("task", fields)
        study.set_user_attr("module_text", task.module_text)


def tune_tasks(
    tasks: Sequence[tuple[KernelTask, SearchSpace]],
    runner: Runner,
    options: TuneOptions,
    progress: Progress | None = None,
) -> list[TuneResult]:
    """Tunes each (task, space) in turn; returns one result per task."""
    progress = progress or Progress()
    storage = open_storage(options.storage)
    deadline = None if options.time_budget_s is None else time.monotonic() + options.time_budget_s
    results = []
    for position, (task, space) in enumerate(tasks):
        progress.on_task_start(task, position, len(tasks))
        task_deadline = None
        if deadline is not None:
            remaining = max(0.0, deadline - time.monotonic())
            task_deadline = time.monotonic() + remaining / (len(tasks) - position)
        state = open_study(task, space, storage, options.strategy, options.seed, options.trials)
        result = _tune_one(state, runner, options, task_deadline, progress)
        if confirm(state.study, task, runner, options.confirm_top, options.confirm_rounds):
            result = summarize_study(state, result.measured)
        progress.on_task_end(result)
        results.append(result)
    return results


def _tune_one(
    state: _Study, runner: Runner, options: TuneOptions, deadline: float | None, progress: Progress
) -> TuneResult:
    rng = random.Random(options.seed)
    measured = 0
    default_trial = next((t for t in state.finished() if t.user_attrs.get("is_default")), None)
    if default_trial is None:
        result = runner.measure(state.task, [state.space.default])[0]
        _record(state, state.space.default, result, "default", is_default=True)
        measured += 1
        progress.on_trial(state.task, result, len(state.finished()))
    while len(state.finished()) < options.trials:
        if deadline is not None and time.monotonic() >= deadline:
            break
        config, trial = _propose(state, options.strategy, rng)
        if config is None:
            break  # every valid configuration was measured
        result = runner.measure(state.task, [config])[0]
        _record(state, config, result, options.strategy, trial=trial)
        measured += 1
        progress.on_trial(state.task, result, len(state.finished()))
    return summarize_study(state, measured)


def _propose(state: _Study, strategy: str, rng: random.Random) -> tuple[Config | None, optuna.Trial | None]:
    """The next configuration to measure, unvisited and valid, with its open trial."""
    visited = state.visited()
    if strategy != "random":
        for _ in range(_MAX_PROPOSALS):
            trial = state.study.ask(state.dists)
            config = state.space.repair(decode(trial.params))
            if config_key(config) not in visited:
                return config, trial
            # Visited (TPE converging): record nothing new, keep the trial out of the count.
            state.study.tell(trial, state=TrialState.PRUNED)
    # Random search, and the way out when the sampler only proposes what was measured.
    for _ in range(200):
        config = state.space.sample(rng)
        if config_key(config) not in visited:
            return config, open_trial(state, config)
    return None, None


def open_trial(state: _Study, config: Config, trial: optuna.Trial | None = None) -> optuna.Trial:
    """A RUNNING trial whose params are exactly `config`: `trial` itself, or, when the sampler's
    proposal was repaired into `config`, a new one (the proposal is closed as PRUNED)."""
    if trial is not None and trial.params == encode(config):
        return trial
    if trial is not None:
        state.study.tell(trial, state=TrialState.PRUNED)
    state.study.enqueue_trial(encode(config))
    return state.study.ask(state.dists)


def _record(
    state: _Study,
    config: Config,
    result: MeasureResult,
    strategy: str,
    trial: optuna.Trial | None = None,
    is_default: bool = False,
) -> None:
    """Stores a measured configuration as a finished trial (COMPLETE, or FAIL with the error)."""
    attrs = {
        "config": json.dumps(config),
        "strategy": strategy,
        "times": result.times,
        "compile_seconds": result.compile_seconds,
    }
    if is_default:
        attrs["is_default"] = True
    if result.error:
        attrs["error"] = result.error[:2000]
    if result.relative is not None:
        attrs["relative"] = result.relative
    default = None if is_default else state.study.user_attrs.get("default_seconds")
    seconds = result.value(default)
    trial = open_trial(state, config, trial)
    for key, attr in attrs.items():
        trial.set_user_attr(key, attr)
    if result.ok:
        state.study.tell(trial, seconds)
    else:
        state.study.tell(trial, state=TrialState.FAIL)
    if is_default and result.ok:
        state.study.set_user_attr("default_seconds", seconds)


def summarize_study(state: _Study, measured: int = 0) -> TuneResult:
    """The study's record: the default's and the chosen configuration's (confirmed) times."""
    trials = state.study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in _FINISHED]
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    confirmed = confirmed_of(state.study.user_attrs)
    chosen = chosen_trial(trials, confirmed)
    return TuneResult(
        task=state.task,
        default_seconds=default_seconds(trials, confirmed),
        best_seconds=chosen[1] if chosen is not None else None,
        best_config=trial_config(chosen[0]) if chosen is not None else None,
        trials=len(finished),
        failures=len(finished) - len(complete),
        measured=measured,
    )
