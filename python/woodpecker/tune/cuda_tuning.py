"""Tuning CUDA kernels: on a local GPU, or built here and measured there.

* With a GPU on this machine, `tune_tasks` runs with a `CudaRunner` like on the CPU.
* Without one (MLIR here, the GPU elsewhere, like TVM's RPC runner): `export_round` proposes
  each kernel's candidates still missing (the workload's budget, `trials`, counts every claim)
  and claims them in the tuning database with no lease (`lease_s=None`: they never expire, they
  are being measured elsewhere), compiles them to PTX and writes one batch per kernel under a
  directory, the candidates' ids being their trial numbers; `wpk measure DIR` on the GPU host
  (numpy and cuda-python only) writes results.json next to each batch; `import_results`
  finishes the claims by trial number (`Claim.of_trial`). Repeat for more generations: the GA
  and TPE see every imported result.

Each batch carries the default configuration as its reference (the measured output every
candidate must match): as a real candidate in the first round, as id -1 afterwards.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from woodpecker.database import (
    RUNNING,
    Claim,
    ClaimLostError,
    TuningDatabase,
    Workload,
    config_key,
    database_exists,
    open_database,
)
from woodpecker.kernels.space import SearchSpace
from woodpecker.kernels.task import Config, KernelTask, MeasureResult
from woodpecker.tune.study import SearchStudy
from woodpecker.tune.tuner import TuneOptions, open_search

REFERENCE_ID = -1  # the default configuration, re-measured as the reference of a later round


def model_cuda_tasks(
    model,
    arch: str,
    opt_level: int = 2,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    kernels: Sequence[str] | None = None,
    layout: str = "auto",
) -> list[tuple[KernelTask, SearchSpace]]:
    """One (task, space) per GPU kernel signature of the model, largest first (`layout` other
    than auto or nchw is an error: the GPU kernels are NCHW)."""
    from woodpecker.targets.cuda import CudaTarget
    from woodpecker.tune.tune_model import model_tasks

    return model_tasks(CudaTarget(arch=arch), model, opt_level, input_shapes, kernels, layout)


@dataclass
class ExportedBatch:
    task: KernelTask
    directory: Path
    candidates: int  # trials waiting for results (the reference not counted)


def _batch_name(position: int, task: KernelTask) -> str:
    return f"{position:03d}_" + re.sub(r"[^A-Za-z0-9_.-]", "_", task.key)


def _claim_candidates(state: SearchStudy, options: TuneOptions, rng: random.Random) -> list[Claim]:
    """Leaseless claims of the candidates still missing from the workload's budget: the
    default's first when it has no trial yet."""
    db, key = state.db, state.task.key
    want = options.trials - db.counts([key])[key].total
    claims: list[Claim] = []
    if want > 0 and not state.has_default:
        claim = db.claim(key, state.space.default, strategy="default", budget=options.trials, is_default=True,
                         lease_s=None)  # fmt: skip
        state.refused(state.space.default, None)  # visited either way
        if claim is not None:
            claims.append(claim)
    while len(claims) < want:
        config, trial = state.propose(rng)
        if config is None:
            break
        claim = db.claim(key, config, strategy=state.strategy, budget=options.trials, lease_s=None)
        state.refused(config, trial)  # claimed or not, it is visited; the proposal is closed
        if claim is None:
            if db.counts([key])[key].total >= options.trials:
                break
            continue
        claims.append(claim)
    return claims


def export_round(
    tasks: Sequence[tuple[KernelTask, SearchSpace]], options: TuneOptions, directory: str | Path, arch: str
) -> list[ExportedBatch]:
    """Claims the missing candidates of each kernel and writes them as batches under `directory`."""
    from woodpecker.measure.cuda_runner import export_candidates

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(options.seed)
    exported = []
    with open_database(options.storage) as db:
        db.add_workloads(Workload.of_task(task) for task, _ in tasks)
        for position, (task, space) in enumerate(tasks):
            state = open_search(db, task, space, options)
            claims = _claim_candidates(state, options, rng)
            if not claims:
                continue
            configs = [c.config for c in claims]
            ids = [c.number for c in claims]
            reference = next((c.number for c in claims if c.is_default), None)
            if reference is None:
                configs.insert(0, space.default)
                ids.insert(0, REFERENCE_ID)
                reference = REFERENCE_ID
            target = root / _batch_name(position, task)
            try:
                export_candidates(task, configs, target, arch, ids=ids, reference=reference)
            except BaseException:
                for claim in claims:  # nothing was exported: the candidates are free again
                    db.release(claim)
                raise
            exported.append(ExportedBatch(task, target, len(claims)))
    return exported


@dataclass
class ImportSummary:
    task: KernelTask
    imported: int
    failures: int
    waiting: int  # candidates of the batch without a result yet


def import_results(directory: str | Path, storage_url: str | None) -> list[ImportSummary]:
    """Finishes each kernel's exported claims with the results `wpk measure` wrote under `directory`."""
    from woodpecker.measure.batch import batch_directories, read_batch, read_results

    batches = [(path, read_batch(path)) for path in batch_directories(directory)]
    if not database_exists(storage_url):
        raise ValueError(
            f"{directory}: there is no tuning database at {storage_url}, so it has no workload "
            f"{batches[0][1].task.key}: import into the database the batch was exported from (--db)"
        )
    summaries = []
    with open_database(storage_url) as db:
        for path, batch in batches:
            results = read_results(path) if (path / "results.json").exists() else {}
            summaries.append(_import_batch(db, path, batch, results))
    return summaries


def _import_batch(db: TuningDatabase, path: Path, batch, results: Mapping[int, MeasureResult]) -> ImportSummary:
    key = batch.task.key
    counts = db.counts([key]).get(key)
    if counts is None:
        raise ValueError(
            f"{path}: {db.location} has no workload {key}: import into the database the batch was exported from (--db)"
        )
    by_number = {t.number: t for t in db.trials([key], states=[RUNNING]).get(key, [])}
    imported = failures = waiting = 0
    for candidate in batch.candidates:
        if candidate.id == REFERENCE_ID:
            continue
        trial = by_number.get(candidate.id)
        if trial is None or trial.config_key != config_key(candidate.config):
            continue  # imported before, or not claimed in this database
        result = results.get(candidate.id)
        if result is None and candidate.error is None:
            waiting += 1
            continue
        if result is None:  # did not compile: nothing to measure
            result = MeasureResult(dict(candidate.config), error=candidate.error)
        try:
            db.finish(
                Claim.of_trial(trial, budget=counts.total),
                seconds=result.seconds if result.ok else None,
                times=result.times,
                error=None if result.ok else result.error or "no time was measured",
                relative=result.relative,
                compile_seconds=result.compile_seconds,
            )
        except ClaimLostError:
            continue  # released or finished meanwhile by another import
        if result.ok:
            imported += 1
        else:
            failures += 1
    return ImportSummary(batch.task, imported, failures, waiting)


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
]
