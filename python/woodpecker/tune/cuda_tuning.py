"""Tuning CUDA kernels: on a local GPU, or built here and measured there.

* With a GPU on this machine, `tune_tasks` runs with a `CudaRunner` like on the CPU.
* Without one (MLIR here, the GPU elsewhere, like TVM's RPC runner): `export_round` asks each
  kernel's study for the candidates still missing (`trials` finished in all), leaves them as
  RUNNING trials, compiles them to PTX and writes one batch per kernel under a directory;
  `wpk measure DIR` on the GPU host (numpy and cuda-python only) writes results.json next to
  each batch; `import_results` tells the studies, by trial number. Repeat for more
  generations: the GA and TPE see every imported result.

Each batch carries the default configuration as its reference (the measured output every
candidate must match): as a real candidate in the first round, as id -1 afterwards.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from woodpecker.kernels.space import SearchSpace
from woodpecker.kernels.task import Config, KernelTask
from woodpecker.tune.storage import open_storage
from woodpecker.tune.tuner import TuneOptions, _propose, _Study, open_study, open_trial, trial_config

REFERENCE_ID = -1  # the default configuration, re-measured as the reference of a later round


def model_cuda_tasks(
    model,
    arch: str,
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    kernels: Sequence[str] | None = None,
) -> list[tuple[KernelTask, SearchSpace]]:
    """One (task, space) per GPU kernel signature of the model, largest first."""
    from woodpecker.targets.cuda import CudaTarget
    from woodpecker.tune.tune_model import model_tasks

    return model_tasks(CudaTarget(arch=arch), model, opt_level, input_shapes, kernels)


@dataclass
class ExportedBatch:
    task: KernelTask
    directory: Path
    candidates: int  # trials waiting for results (the reference not counted)


def _batch_name(position: int, task: KernelTask) -> str:
    return f"{position:03d}_" + re.sub(r"[^A-Za-z0-9_.-]", "_", task.key)


def _open_trial(state: _Study, config: Config, trial: optuna.Trial | None, attrs: dict) -> optuna.Trial:
    """A RUNNING trial of exactly `config`, carrying `attrs`, left open for the results."""
    trial = open_trial(state, config, trial)
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    return trial


def export_round(
    tasks: Sequence[tuple[KernelTask, SearchSpace]], options: TuneOptions, directory: str | Path, arch: str
) -> list[ExportedBatch]:
    """Proposes the missing candidates of each kernel and writes them as batches under `directory`."""
    from woodpecker.measure.cuda_runner import export_candidates

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    storage = open_storage(options.storage)
    rng = random.Random(options.seed)
    exported = []
    for position, (task, space) in enumerate(tasks):
        state = open_study(task, space, storage, options.strategy, options.seed, options.trials)
        trials = state.study.get_trials(deepcopy=False)
        waiting = [t for t in trials if t.state == TrialState.RUNNING and "exported" in t.user_attrs]
        want = options.trials - len(state.finished()) - len(waiting)
        if want <= 0:
            continue
        target = root / _batch_name(position, task)
        has_default = any(t.user_attrs.get("is_default") for t in trials if t.state != TrialState.PRUNED)
        configs: list[Config] = []
        ids: list[int] = []
        reference = None
        if not has_default:
            trial = _open_trial(
                state,
                space.default,
                None,
                {
                    "config": json.dumps(space.default),
                    "strategy": "default",
                    "is_default": True,
                    "exported": str(target),
                },
            )
            configs.append(space.default)
            ids.append(trial.number)
            reference = trial.number
        while len(configs) < want:
            config, trial = _propose(state, options.strategy, rng)
            if config is None:
                break
            trial = _open_trial(
                state,
                config,
                trial,
                {"config": json.dumps(config), "strategy": options.strategy, "exported": str(target)},
            )
            configs.append(config)
            ids.append(trial.number)
        if not configs:
            continue
        if reference is None:
            configs.insert(0, space.default)
            ids.insert(0, REFERENCE_ID)
            reference = REFERENCE_ID
        export_candidates(task, configs, target, arch, ids=ids, reference=reference)
        exported.append(ExportedBatch(task, target, len([i for i in ids if i != REFERENCE_ID])))
    return exported


@dataclass
class ImportSummary:
    task: KernelTask
    imported: int
    failures: int
    waiting: int  # candidates of the batch without a result yet


def import_results(directory: str | Path, storage_url: str | None) -> list[ImportSummary]:
    """Tells each kernel's study the results `wpk measure` wrote under `directory`."""
    from woodpecker.measure.batch import batch_directories, read_batch, read_results

    storage = open_storage(storage_url)
    summaries = []
    for path in batch_directories(directory):
        batch = read_batch(path)
        results = read_results(path) if (path / "results.json").exists() else {}
        try:
            study = optuna.load_study(study_name=batch.task.key, storage=storage)
        except KeyError:
            raise ValueError(
                f"{path}: the storage has no study {batch.task.key}; import into the "
                f"database the batch was exported from (--db)"
            ) from None
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        imported = failures = waiting = 0
        for candidate in batch.candidates:
            if candidate.id == REFERENCE_ID:
                continue
            trial = by_number.get(candidate.id)
            if trial is None or trial.state != TrialState.RUNNING:
                continue  # imported before, or not from this storage
            result = results.get(candidate.id)
            if result is None and candidate.error is None:
                waiting += 1
                continue
            if result is None:  # did not compile: nothing to measure
                from woodpecker.kernels.task import MeasureResult

                result = MeasureResult(dict(candidate.config), error=candidate.error)
            attrs = {"times": result.times, "compile_seconds": result.compile_seconds}
            if result.error:
                attrs["error"] = result.error[:2000]
            for key, value in attrs.items():
                storage.set_trial_user_attr(trial._trial_id, key, value)
            if result.ok:
                study.tell(candidate.id, result.seconds)
                if trial.user_attrs.get("is_default"):
                    study.set_user_attr("default_seconds", result.seconds)
                imported += 1
            else:
                study.tell(candidate.id, state=TrialState.FAIL)
                failures += 1
        summaries.append(ImportSummary(batch.task, imported, failures, waiting))
    return summaries


def best_cuda_configs(storage_url: str | None, tasks: Sequence[KernelTask]) -> dict[str, Config]:
    """model kernel name -> best recorded configuration (for compile(target="cuda", gpu_configs=...))."""
    from woodpecker.tune.records import best_records

    records = best_records(storage_url, [t.key for t in tasks])
    configs = {}
    for task in tasks:
        if task.key in records:
            for name in task.model_kernels:
                configs[name] = records[task.key][0]
    return configs


__all__ = [
    "ExportedBatch",
    "ImportSummary",
    "best_cuda_configs",
    "export_round",
    "import_results",
    "model_cuda_tasks",
    "trial_config",
]
