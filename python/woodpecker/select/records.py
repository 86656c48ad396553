"""The tuning records a compile uses: one batched read of the database per compile.

A workload's record (`woodpecker.database.Record`) is its confirmed fastest complete trial
(`woodpecker.database.choice`). A record whose configuration is no longer valid for the
kernel (the template changed since it was tuned) is skipped with a warning, and the kernel
keeps its default. A database that does not exist yet holds no records (nothing is created).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from woodpecker.database import Record, database_exists, open_database
from woodpecker.kernels.space import Config

if TYPE_CHECKING:
    from woodpecker.kernels.target import CutKernel


def read_records(storage: str | os.PathLike | None, keys: Iterable[str]) -> dict[str, Record]:
    """key -> record, in one batched read ({} when the database does not exist)."""
    keys = list(dict.fromkeys(keys))
    if not keys or not database_exists(storage):
        return {}
    with open_database(storage) as db:
        return db.records(keys)


def valid_configs(kernels: Sequence[CutKernel], records: Mapping[str, Record]) -> dict[str, Config]:
    """task key -> recorded configuration, for the kernels whose record is valid for their
    search space (another is skipped with a warning naming the kernel)."""
    configs: dict[str, Config] = {}
    for item in kernels:
        record = records.get(item.task.key)
        if record is None or item.task.key in configs:
            continue
        config = dict(record.config)
        problems = item.space.violations(config)
        if problems:
            warnings.warn(
                f"tuning record of {item.name} ({item.task.key}) is not valid for its schedule any more "
                f"({problems[0][0]}: {problems[0][1]}); using the default configuration",
                stacklevel=3,
            )
            continue
        configs[item.task.key] = config
    return configs


def record_configs(kernels: Sequence[CutKernel], storage: str | os.PathLike | None) -> dict[str, Config]:
    """task key -> recorded configuration for the kernels that have a valid record (one
    batched read; a record no longer valid for its kernel's search space is skipped with a
    warning)."""
    return valid_configs(kernels, read_records(storage, (k.task.key for k in kernels)))
