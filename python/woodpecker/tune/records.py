"""The best tuning record of each kernel, for `woodpecker.compile`.

A record is the best finished trial of the kernel's study (`KernelTask.key`) in the tuning
storage. Records whose configuration is no longer valid for the kernel (the template
changed since it was tuned) are skipped with a warning, and the kernel keeps its default.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import optuna

from woodpecker.kernels.space import Config
from woodpecker.tune.confirm import chosen_trial, confirmed_of
from woodpecker.tune.params import trial_config
from woodpecker.tune.storage import open_storage, storage_exists

if TYPE_CHECKING:
    from woodpecker.kernels.target import CutKernel


def best_config(study: optuna.Study) -> tuple[Config, float] | None:
    """The configuration a compile uses (the confirmed fastest, see `confirm`) and its seconds."""
    chosen = chosen_trial(study.get_trials(deepcopy=False), confirmed_of(study.user_attrs))
    if chosen is None:
        return None
    config = trial_config(chosen[0])
    return (config, chosen[1]) if config is not None else None


def best_records(storage_url: str | None, keys: Iterable[str]) -> dict[str, tuple[Config, float]]:
    """key -> (best configuration, seconds) for the keys that have a study with a record."""
    if not storage_exists(storage_url):
        return {}
    return _best_records(open_storage(storage_url), keys)


def _best_records(storage, keys: Iterable[str]) -> dict[str, tuple[Config, float]]:
    present = {s.study_name for s in storage.get_all_studies()}
    found = {}
    for key in set(keys) & present:
        study = optuna.load_study(study_name=key, storage=storage)
        record = best_config(study)
        if record is not None:
            found[key] = record
    return found


def has_cpu_records(storage_url: str | None) -> bool:
    """Whether the storage holds any CPU study (else compiling need not cut kernels out)."""
    if not storage_exists(storage_url):
        return False
    return any(s.study_name.startswith("cpu.") for s in open_storage(storage_url).get_all_studies())


def record_configs(kernels: Sequence[CutKernel], storage_url: str | None) -> dict[str, Config]:
    """task key -> recorded best configuration, for the kernels that have a valid record (a
    record no longer valid for its kernel's search space is skipped with a warning)."""
    if not storage_exists(storage_url):
        return {}
    records = _best_records(open_storage(storage_url), (k.task.key for k in kernels))
    configs: dict[str, Config] = {}
    for item in kernels:
        if item.task.key not in records or item.task.key in configs:
            continue
        config, _ = records[item.task.key]
        problems = item.space.violations(config)
        if problems:
            warnings.warn(
                f"tuning record of {item.name} ({item.task.key}) is not valid for its schedule any more "
                f"({problems[0][0]}: {problems[0][1]}); using the default configuration",
                stacklevel=2,
            )
            continue
        configs[item.task.key] = config
    return configs
