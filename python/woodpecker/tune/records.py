"""The tuning records of kernels by signature, as `wpk tune` recorded them.

`best_records` gives each key's recorded configuration and time (one batched read); what a
compile does with records (checking each against its kernel's search space) is
`woodpecker.select.records.record_configs`, re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from woodpecker.kernels.space import Config
from woodpecker.select.records import read_records, record_configs

__all__ = ["best_records", "record_configs"]


def best_records(storage: str | os.PathLike | None, keys: Iterable[str]) -> dict[str, tuple[Config, float]]:
    """key -> (recorded configuration, seconds) for the keys that have a record."""
    return {key: (dict(r.config), r.seconds) for key, r in read_records(storage, keys).items()}
