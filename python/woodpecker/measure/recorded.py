"""Runners that do not compile: replayed or cached measurements.

* `RecordedRunner` answers from a function of the configuration (or a table of recorded
  results); it tests the search logic without compiling anything (`delay_s`: a fixed sleep per
  configuration, standing in for a measurement's duration, e.g. for several tuning workers).
* `CachedRunner` wraps a real runner and measures each (task, configuration) once; the
  strategy comparison (bench/bench_tuning.py) uses it so GA, TPE and random search see the same
  time for the same configuration, and a JSON file keeps the measurements across runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from woodpecker.database.schema import config_key
from woodpecker.kernels.task import Config, KernelTask, MeasureResult, Runner


class RecordedRunner:
    """Replays `seconds(task, config)`: a float is a success, a string an error; each
    configuration takes `delay_s` of wall time."""

    def __init__(
        self,
        seconds: Callable[[KernelTask, Config], float | str] | Mapping[str, float | str],
        delay_s: float = 0.0,
    ):
        self._seconds = seconds
        self.delay_s = delay_s
        self.calls: list[tuple[str, Config]] = []

    def measure(self, task: KernelTask, configs: Sequence[Config]) -> list[MeasureResult]:
        results = []
        for config in configs:
            if self.delay_s > 0:
                time.sleep(self.delay_s)
            self.calls.append((task.key, dict(config)))
            if callable(self._seconds):
                value = self._seconds(task, config)
            else:
                value = self._seconds.get(config_key(config), "no recorded measurement")
            if isinstance(value, str):
                results.append(MeasureResult(dict(config), error=value))
            else:
                results.append(MeasureResult(dict(config), times=[float(value)] * 3))
        return results

    def close(self) -> None:
        pass


class CachedRunner:
    """Measures each (task, configuration) once with `inner`; optionally kept in a JSON file."""

    def __init__(
        self, inner: Runner, path: str | Path | None = None, task_key: Callable[[KernelTask], str] | None = None
    ):
        self.inner = inner
        self.task_key = task_key or (lambda task: task.key)
        self.path = Path(path) if path is not None else None
        self.cache: dict[str, dict] = {}
        self.hits = 0
        self.misses = 0
        if self.path is not None and self.path.exists():
            self.cache = json.loads(self.path.read_text())

    def measure(self, task: KernelTask, configs: Sequence[Config]) -> list[MeasureResult]:
        results = []
        for config in configs:
            key = f"{self.task_key(task)}|{config_key(config)}"
            if key in self.cache:
                self.hits += 1
            else:
                self.misses += 1
                self.cache[key] = self.inner.measure(task, [config])[0].to_json()
                self._save()
            results.append(MeasureResult.from_json(self.cache[key]))
        return results

    def _save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.cache))
            tmp.replace(self.path)

    def close(self) -> None:
        self.inner.close()
