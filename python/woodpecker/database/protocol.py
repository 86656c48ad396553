"""The claim protocol, written once over a backend's exclusive transaction (`Transaction`).

Every write is one transaction that first locks the workload it touches (SQLite: `BEGIN
IMMEDIATE`; PostgreSQL: `SELECT ... FOR UPDATE` on the workload's row; journal: an exclusive
`fcntl` lock on the file), so the check and the write of a claim are atomic across processes:

* claim(key, config, budget): remove the workload's expired claims (`liveness.claim_expired`);
  refuse (None) when `config` has a trial or the live claims, complete and failed trials number
  `budget`; else insert a running trial with the workload's next number and a fresh token.
* finish(claim): the running trial with the claim's number and token becomes complete or failed,
  with the workload's next finish sequence number (`Trial.seq`). If it is gone (taken over after
  its lease expired), the result is inserted as a new trial when its configuration has none and
  the budget allows, else ClaimLostError.
* release(claim): the running trial with the claim's number and token is removed.

Trial numbers and finish sequence numbers come from counters on the workload (`Counters`), so a
number is never reused, not even after a release.
"""

from __future__ import annotations

import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any

from woodpecker.database.base import DEFAULT_LEASE_S, TransferSummary, TuningDatabase
from woodpecker.database.choice import merge_confirmation
from woodpecker.database.errors import ClaimLostError, DatabaseError
from woodpecker.database.liveness import claim_expired, this_host, worker_name
from woodpecker.database.schema import (
    COMPLETE,
    FAILED,
    FINISHED,
    MAX_ERROR_CHARS,
    RUNNING,
    Claim,
    Selection,
    Trial,
    Workload,
    config_from_json,
    config_key,
    config_to_json,
    finite_or_none,
)
from woodpecker.database.transfer import read_transfer, write_transfer

_CLAIM_ATTEMPTS = 3  # a unique-constraint conflict (a backstop that should not fire) is retried


@dataclass(frozen=True)
class Counters:
    """A workload's counters: the number the next claim gets, the last finish sequence number."""

    next_number: int = 0
    finish_seq: int = 0


class Transaction(ABC):
    """A backend's exclusive write transaction: what the protocol reads and writes."""

    @abstractmethod
    def lock_workload(self, key: str) -> Counters | None:
        """Locks the workload against other writers; its counters, None when it does not exist."""

    @abstractmethod
    def set_counters(self, key: str, counters: Counters) -> None: ...

    @abstractmethod
    def workload_trials(self, key: str) -> list[Trial]:
        """Every trial of the workload, expired claims included."""

    @abstractmethod
    def running_trials(self, key: str) -> list[Trial]:
        """The workload's running trials, expired claims included."""

    @abstractmethod
    def trial_count(self, key: str) -> int:
        """How many trials the workload has in every state, expired claims included."""

    @abstractmethod
    def trial_by_number(self, key: str, number: int) -> Trial | None: ...

    @abstractmethod
    def trial_by_config(self, key: str, config_key: str) -> Trial | None: ...

    @abstractmethod
    def insert_trial(self, trial: Trial) -> None: ...

    @abstractmethod
    def update_trial(self, trial: Trial) -> None:
        """Replaces the trial with the same key and number."""

    @abstractmethod
    def delete_trial(self, key: str, number: int) -> None: ...

    @abstractmethod
    def workload_confirmations(self, key: str) -> dict[int, float | None]: ...

    @abstractmethod
    def set_confirmations(self, key: str, values: Mapping[int, float | None]) -> None:
        """Sets (inserts or replaces) these trials' confirmed seconds."""

    @abstractmethod
    def workload_digests(self, keys: Sequence[str]) -> dict[str, str]:
        """key -> Workload.digest of the stored workloads among `keys`."""

    @abstractmethod
    def insert_workload(self, workload: Workload) -> None:
        """Inserts a workload with zero counters (nothing when another writer just did)."""

    @abstractmethod
    def update_workload(self, workload: Workload) -> None:
        """Replaces a workload's fields, keeping its counters."""

    @abstractmethod
    def selection(self, key: str) -> Selection | None: ...

    @abstractmethod
    def put_selection(self, selection: Selection) -> None: ...

    def changed(self, key: str) -> None:  # noqa: B027 - a hook, empty unless a backend keeps derived data
        """The workload's finished trials or confirmations changed (SQL refreshes its record)."""


def truncate_error(error: str | None) -> str | None:
    return None if error is None else str(error)[:MAX_ERROR_CHARS]


class TransactionalDatabase(TuningDatabase, ABC):
    """The write half of `TuningDatabase` over `_transaction()`; backends add the reads."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._host = this_host()

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Transaction]:
        """An exclusive write transaction: committed when the block ends, rolled back on an error."""

    def _is_conflict(self, error: BaseException) -> bool:
        """Whether `error` is a unique-constraint conflict (retried by claim)."""
        return isinstance(error, ConflictError)

    def _expired(self, trial: Trial, now: float) -> bool:
        return trial.state == RUNNING and claim_expired(trial.worker, trial.lease_expires, now, self._host)

    def _locked(self, tx: Transaction, key: str) -> Counters:
        counters = tx.lock_workload(key)
        if counters is None:
            raise DatabaseError(f"{self.location}: no workload '{key}'; add it with add_workloads first")
        return counters

    def _drop_expired(self, tx: Transaction, key: str, now: float) -> int:
        """Removes the workload's expired claims; returns how many trials are left."""
        total = tx.trial_count(key)
        expired = [t.number for t in tx.running_trials(key) if self._expired(t, now)]
        for number in expired:
            tx.delete_trial(key, number)
        return total - len(expired)

    # -- workloads ---------------------------------------------------------------------------
    def add_workloads(self, workloads: Iterable[Workload]) -> None:
        by_key = {w.key: w for w in workloads}
        if not by_key:
            return
        with self._transaction() as tx:
            digests = tx.workload_digests(list(by_key))
            for key, workload in by_key.items():
                if key not in digests:
                    tx.insert_workload(workload)
                elif digests[key] != workload.digest:
                    tx.update_workload(workload)

    # -- claims ------------------------------------------------------------------------------
    def claim(
        self,
        key: str,
        config: Mapping[str, Any],
        *,
        strategy: str,
        budget: int,
        is_default: bool = False,
        worker: str | None = None,
        lease_s: float | None = DEFAULT_LEASE_S,
    ) -> Claim | None:
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        if lease_s is not None and not lease_s > 0:
            raise ValueError(f"lease_s must be > 0 or None, got {lease_s}")
        config = config_from_json(config_to_json(config))
        ckey = config_key(config)
        worker = worker or worker_name(self._host)
        for attempt in range(_CLAIM_ATTEMPTS):
            try:
                return self._claim_once(key, config, ckey, strategy, budget, is_default, worker, lease_s)
            except Exception as error:
                if attempt + 1 == _CLAIM_ATTEMPTS or not self._is_conflict(error):
                    raise
        raise AssertionError("unreachable")

    def _claim_once(
        self,
        key: str,
        config: dict[str, Any],
        ckey: str,
        strategy: str,
        budget: int,
        is_default: bool,
        worker: str,
        lease_s: float | None,
    ) -> Claim | None:
        with self._transaction() as tx:
            counters = self._locked(tx, key)
            now = time.time()
            live = self._drop_expired(tx, key, now)
            existing = tx.trial_by_config(key, ckey)
            if live >= budget or (existing is not None and not self._expired(existing, now)):
                return None
            claim = Claim(
                key=key,
                number=counters.next_number,
                config=config,
                config_key=ckey,
                token=uuid.uuid4().hex,
                worker=worker,
                strategy=strategy,
                is_default=is_default,
                budget=budget,
                claimed_at=now,
                lease_expires=None if lease_s is None else now + lease_s,
            )
            tx.insert_trial(
                Trial(
                    key=key,
                    number=claim.number,
                    config=config,
                    config_key=ckey,
                    state=RUNNING,
                    strategy=strategy,
                    is_default=is_default,
                    worker=worker,
                    claimed_at=now,
                    lease_expires=claim.lease_expires,
                    token=claim.token,
                )
            )
            tx.set_counters(key, replace(counters, next_number=counters.next_number + 1))
            return claim

    def finish(
        self,
        claim: Claim,
        *,
        seconds: float | None,
        times: Sequence[float] = (),
        error: str | None = None,
        relative: float | None = None,
        compile_seconds: float = 0.0,
    ) -> Trial:
        seconds = finite_or_none(seconds)
        failed = error is not None or seconds is None
        if failed and error is None:
            error = "no time was recorded"
        with self._transaction() as tx:
            counters = self._locked(tx, claim.key)
            now = time.time()
            mine = tx.trial_by_number(claim.key, claim.number)
            if mine is not None and (mine.token != claim.token or mine.state != RUNNING):
                mine = None
            number = claim.number
            if mine is None:
                live = self._drop_expired(tx, claim.key, now)
                existing = tx.trial_by_config(claim.key, claim.config_key)
                if live >= claim.budget or (existing is not None and not self._expired(existing, now)):
                    raise ClaimLostError(
                        f"{self.location}: the claim of trial {claim.number} of {claim.key} was taken over "
                        f"(its lease expired or its worker was seen dead) and its result was not recorded; "
                        f"claim with a longer lease_s"
                    )
                number = counters.next_number
                counters = replace(counters, next_number=number + 1)
            trial = Trial(
                key=claim.key,
                number=number,
                config=claim.config,
                config_key=claim.config_key,
                state=FAILED if failed else COMPLETE,
                strategy=claim.strategy,
                is_default=claim.is_default,
                seconds=None if failed else seconds,
                times=tuple(float(t) for t in times),
                relative=finite_or_none(relative),
                error=truncate_error(error) if failed else None,
                compile_seconds=float(compile_seconds),
                worker=claim.worker,
                claimed_at=claim.claimed_at,
                finished_at=now,
                lease_expires=claim.lease_expires,
                seq=counters.finish_seq + 1,
                token=claim.token,
            )
            if mine is None:
                tx.insert_trial(trial)
            else:
                tx.update_trial(trial)
            tx.set_counters(claim.key, replace(counters, finish_seq=counters.finish_seq + 1))
            tx.changed(claim.key)
            return trial

    def release(self, claim: Claim) -> None:
        with self._transaction() as tx:
            if tx.lock_workload(claim.key) is None:
                return
            trial = tx.trial_by_number(claim.key, claim.number)
            if trial is not None and trial.token == claim.token and trial.state == RUNNING:
                tx.delete_trial(claim.key, trial.number)

    # -- confirmations, selections -----------------------------------------------------------
    def confirm(self, key: str, confirmed: Mapping[int, float | None]) -> None:
        if not confirmed:
            return
        with self._transaction() as tx:
            self._locked(tx, key)
            current = tx.workload_confirmations(key)
            merged = {
                int(n): merge_confirmation(current.get(int(n)), value, int(n) in current)
                for n, value in confirmed.items()
            }
            tx.set_confirmations(key, merged)
            tx.changed(key)

    def put_selection(self, selection: Selection) -> None:
        if not selection.updated_at:
            selection = replace(selection, updated_at=time.time())
        with self._transaction() as tx:
            tx.put_selection(selection)

    # -- files -------------------------------------------------------------------------------
    def export(self, path: str | os.PathLike, keys: Iterable[str] | None = None) -> TransferSummary:
        keys = self.keys() if keys is None else list(dict.fromkeys(keys))
        workloads = self.workloads(keys)
        present = [k for k in keys if k in workloads]
        return write_transfer(
            path,
            [workloads[k] for k in present],
            self.trials(present, states=FINISHED),
            self.confirmations(present),
            self.selections(present),
        )

    def import_file(self, path: str | os.PathLike) -> TransferSummary:
        contents = read_transfer(path)
        self.add_workloads(contents.workloads)
        added = duplicates = confirmations = 0
        for key in sorted(set(contents.trials) | set(contents.confirmations)):
            new, same, confirmed = self._merge(key, contents.trials.get(key, []), contents.confirmations.get(key, {}))
            added, duplicates, confirmations = added + new, duplicates + same, confirmations + confirmed
        selections = 0
        for selection in contents.selections:
            with self._transaction() as tx:
                existing = tx.selection(selection.key)
                if existing is None or existing.updated_at < selection.updated_at:
                    tx.put_selection(selection)
                    selections += 1
        return TransferSummary(len(contents.workloads), added, duplicates, confirmations, selections)

    def _merge(self, key: str, trials: Sequence[Trial], confirmed: Mapping[str, float | None]) -> tuple[int, int, int]:
        """Merges one workload's imported trials and confirmations (by config_key)."""
        with self._transaction() as tx:
            counters = self._locked(tx, key)
            by_config = {t.config_key: t for t in tx.workload_trials(key)}
            added = duplicates = 0
            for trial in sorted(trials, key=lambda t: t.number):
                existing = by_config.get(trial.config_key)
                if existing is not None and existing.finished:
                    duplicates += 1
                    continue
                counters = replace(counters, finish_seq=counters.finish_seq + 1)
                if existing is not None:  # a claim of it is running here: the import finishes it
                    merged = replace(trial, key=key, number=existing.number, seq=counters.finish_seq, token=None)
                    tx.update_trial(merged)
                else:
                    merged = replace(trial, key=key, number=counters.next_number, seq=counters.finish_seq, token=None)
                    counters = replace(counters, next_number=counters.next_number + 1)
                    tx.insert_trial(merged)
                by_config[trial.config_key] = merged
                added += 1
            tx.set_counters(key, counters)
            current = tx.workload_confirmations(key)
            updates = {}
            for ckey, value in confirmed.items():
                local = by_config.get(ckey)
                if local is None or not local.finished:
                    continue
                merged_value = merge_confirmation(current.get(local.number), value, local.number in current)
                if local.number not in current or merged_value != current[local.number]:
                    updates[local.number] = merged_value
            if updates:
                tx.set_confirmations(key, updates)
            tx.changed(key)
            return added, duplicates, len(updates)


class ConflictError(DatabaseError):
    """A unique constraint stopped two writers racing for one trial (claim retries it)."""
