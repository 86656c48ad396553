"""The journal backend: an append-only JSON-lines file for several processes on one machine.

    {"format": "woodpecker-tuning-journal", "version": 1, "created_at": ...}   the header
    {"ops": [operation, ...]}                                                   one write transaction

Every write takes an exclusive `fcntl.flock` on the file, reads the lines other processes
appended since this process last looked (replayed into a `MemoryState`), checks, appends its
transaction's operations as one line and releases the lock: check and append are atomic across
processes. Reads take a shared lock and replay what is new (nothing when the file did not grow).
flock does not work across machines (NFS): use PostgreSQL there.

Damage: a last line without its newline is a write that never completed (its process died while
writing; its caller never heard back): readers ignore it and the next writer truncates it. Any
other line that is not a valid transaction makes the journal refused, naming the line: replaying
without it could lose a claim or a result (a configuration measured twice, a record lost), so the
fix is the user's: restore the file, or delete that line accepting the loss.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from woodpecker.database.base import Since
from woodpecker.database.errors import DatabaseError
from woodpecker.database.memory import MemoryState
from woodpecker.database.protocol import Counters, Transaction, TransactionalDatabase
from woodpecker.database.schema import (
    FAILED,
    SCHEMA_VERSION,
    Counts,
    Record,
    Selection,
    Trial,
    Workload,
)

FORMAT = "woodpecker-tuning-journal"


class _JournalTransaction(Transaction):
    """Reads the caught-up state; writes become operations, applied once the line is appended."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.ops: list[dict[str, Any]] = []

    def lock_workload(self, key: str) -> Counters | None:
        return self.state.counters.get(key) if key in self.state.workloads else None

    def set_counters(self, key: str, counters: Counters) -> None:
        self.ops.append(
            {"op": "counters", "key": key, "next_number": counters.next_number, "finish_seq": counters.finish_seq}
        )

    def workload_trials(self, key: str) -> list[Trial]:
        return sorted(self.state.trials.get(key, {}).values(), key=lambda trial: trial.number)

    def running_trials(self, key: str) -> list[Trial]:
        trials = self.state.trials.get(key, {})
        return [trials[number] for number in sorted(self.state.running.get(key, ()))]

    def trial_count(self, key: str) -> int:
        return len(self.state.trials.get(key, {}))

    def trial_by_number(self, key: str, number: int) -> Trial | None:
        return self.state.trials.get(key, {}).get(number)

    def trial_by_config(self, key: str, config_key: str) -> Trial | None:
        number = self.state.by_config.get(key, {}).get(config_key)
        return None if number is None else self.state.trials[key][number]

    def insert_trial(self, trial: Trial) -> None:
        self.ops.append({"op": "trial", "trial": trial.to_json()})

    def update_trial(self, trial: Trial) -> None:
        self.ops.append({"op": "trial", "trial": trial.to_json()})

    def delete_trial(self, key: str, number: int) -> None:
        self.ops.append({"op": "delete", "key": key, "number": number})

    def workload_confirmations(self, key: str) -> dict[int, float | None]:
        return dict(self.state.confirmations.get(key, {}))

    def set_confirmations(self, key: str, values: Mapping[int, float | None]) -> None:
        self.ops.append({"op": "confirm", "key": key, "values": [[n, s] for n, s in sorted(values.items())]})

    def workload_digests(self, keys: Sequence[str]) -> dict[str, str]:
        return {key: self.state.digests[key] for key in keys if key in self.state.digests}

    def insert_workload(self, workload: Workload) -> None:
        self.ops.append({"op": "workload", "workload": workload.to_json()})

    def update_workload(self, workload: Workload) -> None:
        self.ops.append({"op": "workload", "workload": workload.to_json()})

    def selection(self, key: str) -> Selection | None:
        return self.state.selections.get(key)

    def put_selection(self, selection: Selection) -> None:
        self.ops.append({"op": "selection", "selection": selection.to_json()})


class JournalDatabase(TransactionalDatabase):
    """A tuning database in a journal file (see the module's docstring)."""

    def __init__(self, path: Path, *, read_only_reason: str | None = None) -> None:
        super().__init__(str(path))
        self._path = path
        self._read_only_reason = read_only_reason
        self._mutex = threading.RLock()  # flock does not exclude threads sharing the descriptor
        self._state = MemoryState()
        self._offset = 0  # bytes replayed
        self._lines = 0  # lines replayed (the header included)
        self._fd = -1
        self._pid = -1
        self._open()
        try:
            with self._flock(fcntl.LOCK_SH if read_only_reason else fcntl.LOCK_EX):
                if os.fstat(self._fd).st_size == 0 and read_only_reason is None:
                    header = {"format": FORMAT, "version": SCHEMA_VERSION, "created_at": time.time()}
                    self._append(json.dumps(header) + "\n")
                self._catch_up(truncate_partial=read_only_reason is None)
        except BaseException:
            self.close()
            raise

    # -- the file ----------------------------------------------------------------------------
    def _open(self) -> None:
        """Opens the file: in __init__, and again in a forked child (a descriptor shared with the
        parent would share its locks)."""
        flags = os.O_RDONLY if self._read_only_reason else os.O_RDWR | os.O_APPEND | os.O_CREAT
        try:
            self._fd = os.open(self._path, flags, 0o644)
        except OSError as error:
            raise DatabaseError(f"cannot open the journal {self._path}: {error.strerror or error}") from None
        self._pid = os.getpid()

    @contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        with self._mutex:
            if self._fd < 0:
                raise DatabaseError(f"{self._path}: the journal was closed")
            if self._pid != os.getpid():
                self._open()
            try:
                fcntl.flock(self._fd, mode)
            except OSError as error:
                raise DatabaseError(f"cannot lock the journal {self._path}: {error.strerror or error}") from None
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _append(self, text: str) -> None:
        data = text.encode()
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as error:
            raise DatabaseError(f"cannot write the journal {self._path}: {error.strerror or error}") from None

    def _catch_up(self, *, truncate_partial: bool) -> None:
        """Replays the lines appended since the last look (hold a lock)."""
        size = os.fstat(self._fd).st_size
        if size == self._offset:
            return
        if size < self._offset:  # replaced by a shorter file (a backup restored): start over
            self._state, self._offset, self._lines = MemoryState(), 0, 0
        data = os.pread(self._fd, size - self._offset, self._offset)
        end = data.rfind(b"\n") + 1  # complete lines only
        if self._lines == 0 and end == 0:
            self._check_header(data)  # no line at all: not a journal (an SQLite file, say)
        for raw in data[:end].splitlines():
            self._lines += 1
            self._replay(raw)
        self._offset += end
        if end < len(data) and truncate_partial:
            os.ftruncate(self._fd, self._offset)  # after a valid header: a write that never completed

    def _replay(self, raw: bytes) -> None:
        if self._lines == 1:
            self._check_header(raw)
            return
        try:
            entry = json.loads(raw)
            for op in entry["ops"]:
                self._state.apply(op)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            raise DatabaseError(
                f"{self._path} line {self._lines} is not a valid journal entry ({type(error).__name__}: {error}); "
                f"the journal is refused rather than replayed without it: restore the file, or delete that line "
                f"accepting the loss of what it recorded"
            ) from None

    def _check_header(self, raw: bytes) -> None:
        where = self._path
        if raw.startswith(b"SQLite format 3"):
            raise DatabaseError(f"{where} is an SQLite database, not a journal: give --db a path without .journal")
        try:
            header = json.loads(raw)
        except (ValueError, RecursionError):
            header = None
        if isinstance(header, dict) and "op_code" in header:
            raise DatabaseError(
                f"{where} is an Optuna journal (the old tuning records), not a Woodpecker tuning journal: "
                f"give --db another path"
            )
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise DatabaseError(f"{where} is not a Woodpecker tuning journal (line 1 is no journal header)")
        version = header.get("version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{where} was written by a newer Woodpecker (schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}): upgrade woodpecker, or give --db another journal"
            )

    @contextmanager
    def _reading(self) -> Iterator[MemoryState]:
        """The state with everything other processes appended, held still while it is read."""
        with self._mutex:
            if self._fd < 0 or self._pid != os.getpid() or os.fstat(self._fd).st_size != self._offset:
                with self._flock(fcntl.LOCK_SH):
                    self._catch_up(truncate_partial=False)
            yield self._state

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        if self._read_only_reason is not None:
            raise DatabaseError(f"{self._path} is read-only ({self._read_only_reason}): tuning needs a writable --db")
        with self._flock(fcntl.LOCK_EX):
            self._catch_up(truncate_partial=True)
            tx = _JournalTransaction(self._state)
            yield tx
            if tx.ops:
                line = json.dumps({"ops": tx.ops}, separators=(",", ":"), allow_nan=False) + "\n"
                self._append(line)
                self._offset += len(line.encode())
                self._lines += 1
                for op in tx.ops:
                    self._state.apply(op)

    # -- reads -------------------------------------------------------------------------------
    def workloads(self, keys: Iterable[str]) -> dict[str, Workload]:
        with self._reading() as state:
            return {key: state.workloads[key] for key in keys if key in state.workloads}

    def keys(self, target: str | None = None, prefix: str | None = None) -> list[str]:
        with self._reading() as state:
            return sorted(
                key
                for key, workload in state.workloads.items()
                if (target is None or workload.target == target) and (not prefix or key.startswith(prefix))
            )

    def trials(
        self, keys: Iterable[str], *, states: Iterable[str] | None = None, since: Since | None = None
    ) -> dict[str, list[Trial]]:
        with self._reading() as state:
            wanted = None if states is None else set(states)
            now = time.time()
            found: dict[str, list[Trial]] = {}
            for key in dict.fromkeys(keys):
                cursor = since if isinstance(since, int) or since is None else since.get(key, 0)
                chosen = [
                    trial
                    for _, trial in sorted(state.trials.get(key, {}).items())
                    if (wanted is None or trial.state in wanted)
                    and (cursor is None or (trial.seq is not None and trial.seq > cursor))
                    and not self._expired(trial, now)
                ]
                if chosen:
                    found[key] = chosen
            return found

    def counts(self, keys: Iterable[str]) -> dict[str, Counts]:
        with self._reading() as state:
            now = time.time()
            found = {}
            for key in keys:
                if key in state.workloads:
                    trials, running = state.trials[key], state.running[key]
                    live = sum(1 for number in running if not self._expired(trials[number], now))
                    failed = sum(1 for trial in trials.values() if trial.state == FAILED)
                    found[key] = Counts(live, len(trials) - len(running) - failed, failed)
            return found

    def confirmations(self, keys: Iterable[str]) -> dict[str, dict[int, float | None]]:
        with self._reading() as state:
            return {key: dict(state.confirmations[key]) for key in keys if state.confirmations.get(key)}

    def records(self, keys: Iterable[str]) -> dict[str, Record]:
        with self._reading() as state:
            found = {}
            for key in keys:
                record = state.record(key) if key in state.workloads else None
                if record is not None:
                    found[key] = record
            return found

    def selections(self, keys: Iterable[str]) -> dict[str, Selection]:
        with self._reading() as state:
            return {key: state.selections[key] for key in keys if key in state.selections}

    def close(self) -> None:
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
