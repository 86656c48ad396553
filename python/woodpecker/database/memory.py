"""The tables of a tuning database held in memory, changed by journal operations.

A journal (`woodpecker.database.journal`) is a log of these operations; replaying it in order
rebuilds the state every writer decided on. Operations (JSON objects):

    {"op": "workload", "workload": {...}}                      insert or replace (counters kept)
    {"op": "counters", "key": K, "next_number": N, "finish_seq": S}
    {"op": "trial", "trial": {...}}                            insert or replace by (key, number)
    {"op": "delete", "key": K, "number": N}                    a released or expired claim
    {"op": "confirm", "key": K, "values": [[N, seconds or null], ...]}
    {"op": "selection", "selection": {...}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from woodpecker.database.choice import choose_record
from woodpecker.database.protocol import Counters
from woodpecker.database.schema import RUNNING, Record, Selection, Trial, Workload, finite_or_none


@dataclass
class MemoryState:
    """Workloads with their counters, trials, confirmations and selections; records on demand."""

    workloads: dict[str, Workload] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    counters: dict[str, Counters] = field(default_factory=dict)
    trials: dict[str, dict[int, Trial]] = field(default_factory=dict)
    confirmations: dict[str, dict[int, float | None]] = field(default_factory=dict)
    selections: dict[str, Selection] = field(default_factory=dict)
    by_config: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> config_key -> number
    running: dict[str, set[int]] = field(default_factory=dict)  # key -> numbers of running trials
    _records: dict[str, Record | None] = field(default_factory=dict)  # cache, dropped when a key changes

    def apply(self, op: Mapping[str, Any]) -> None:
        """Applies one operation; a malformed one raises KeyError, TypeError or ValueError."""
        kind = op["op"]
        if kind == "workload":
            workload = Workload.from_json(op["workload"])
            self.workloads[workload.key] = workload
            self.digests[workload.key] = workload.digest
            self.counters.setdefault(workload.key, Counters())
            self.trials.setdefault(workload.key, {})
            self.by_config.setdefault(workload.key, {})
            self.running.setdefault(workload.key, set())
        elif kind == "counters":
            self._known(op["key"])
            self.counters[op["key"]] = Counters(int(op["next_number"]), int(op["finish_seq"]))
        elif kind == "trial":
            trial = Trial.from_json(op["trial"])
            self._known(trial.key)
            self._remove(trial.key, trial.number)
            self.trials[trial.key][trial.number] = trial
            self.by_config[trial.key][trial.config_key] = trial.number
            if trial.state == RUNNING:
                self.running[trial.key].add(trial.number)
        elif kind == "delete":
            self._known(op["key"])
            self._remove(op["key"], int(op["number"]))
        elif kind == "confirm":
            self._known(op["key"])
            values = self.confirmations.setdefault(op["key"], {})
            for number, seconds in op["values"]:
                values[int(number)] = finite_or_none(seconds)
            self._records.pop(op["key"], None)
        elif kind == "selection":
            selection = Selection.from_json(op["selection"])
            self.selections[selection.key] = selection
        else:
            raise ValueError(f"unknown operation '{kind}'")

    def _remove(self, key: str, number: int) -> None:
        old = self.trials[key].pop(number, None)
        if old is not None and self.by_config[key].get(old.config_key) == number:
            del self.by_config[key][old.config_key]
        self.running[key].discard(number)
        self._records.pop(key, None)

    def _known(self, key: str) -> None:
        if key not in self.workloads:
            raise ValueError(f"operation on workload '{key}', which no earlier line adds")

    def record(self, key: str) -> Record | None:
        if key not in self._records:
            trials = self.trials.get(key, {}).values()
            self._records[key] = choose_record(key, trials, self.confirmations.get(key, {}))
        return self._records[key]
