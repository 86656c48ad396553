"""The tuning database's interface, `TuningDatabase`: what the tuner, confirmation, selection,
the report and compile call. Every batched read takes many keys and answers in one go; keys
the database does not have are left out of the answer.

Backends (`woodpecker.database.open.open_database`): SQLite and PostgreSQL
(`woodpecker.database.sql`), a journal file (`woodpecker.database.journal`). All share the
claim protocol of `woodpecker.database.protocol`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from woodpecker.database.schema import Claim, Counts, Record, Selection, Trial, Workload

DEFAULT_LEASE_S = 3600.0  # a claim's lease unless told otherwise (a dead local worker's ends at once)

Since = int | Mapping[str, int]  # a finish cursor (Trial.seq) for every key, or per key


@dataclass(frozen=True)
class TransferSummary:
    """What an export wrote or an import merged."""

    workloads: int = 0
    trials: int = 0  # written, or added by an import
    duplicates: int = 0  # import: trials whose configuration the workload had already
    confirmations: int = 0
    selections: int = 0


class TuningDatabase(ABC):
    """Workloads, their trials, confirmations, records and selections, shared by every worker."""

    location: str  # the file path or the URL (password hidden), for messages

    # -- workloads ---------------------------------------------------------------------------
    @abstractmethod
    def add_workloads(self, workloads: Iterable[Workload]) -> None:
        """Inserts the workloads that are new and updates those that changed (idempotent)."""

    @abstractmethod
    def workloads(self, keys: Iterable[str]) -> dict[str, Workload]:
        """key -> workload."""

    @abstractmethod
    def keys(self, target: str | None = None, prefix: str | None = None) -> list[str]:
        """The workloads' keys, sorted; only of `target` and/or starting with `prefix`."""

    # -- trials ------------------------------------------------------------------------------
    @abstractmethod
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
        """Claims `config` of workload `key` for measuring, atomically across processes and hosts.

        None when that configuration already has a trial (a live claim, complete or failed) or
        the workload has `budget` trials (live claims, complete and failed ones). Expired claims
        are removed first and count for nothing. `worker`: "host:pid" (default: this process).
        `lease_s` None: the claim never expires. An unknown workload is a DatabaseError."""

    @abstractmethod
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
        """Records the claim's measurement: complete with `seconds`, or failed (an error, or no
        finite seconds). A claim whose trial was taken over is recorded as a new trial when its
        configuration has none and the budget allows, else ClaimLostError."""

    @abstractmethod
    def release(self, claim: Claim) -> None:
        """Gives a claim up unmeasured (e.g. on Ctrl-C): its trial is removed."""

    @abstractmethod
    def trials(
        self, keys: Iterable[str], *, states: Iterable[str] | None = None, since: Since | None = None
    ) -> dict[str, list[Trial]]:
        """key -> its trials by number (running: live claims only). `since`: only trials that
        finished after that cursor (`Trial.seq`), for a worker to catch up with the others."""

    @abstractmethod
    def counts(self, keys: Iterable[str]) -> dict[str, Counts]:
        """key -> how many trials it has by state (running: live claims only)."""

    # -- confirmations and records -----------------------------------------------------------
    @abstractmethod
    def confirm(self, key: str, confirmed: Mapping[int, float | None]) -> None:
        """Merges re-measured times {trial number: seconds, None when it failed} into the
        workload's confirmations (a trial confirmed twice keeps the lower time)."""

    @abstractmethod
    def confirmations(self, keys: Iterable[str]) -> dict[str, dict[int, float | None]]:
        """key -> {trial number: confirmed seconds} (workloads with confirmations only)."""

    @abstractmethod
    def records(self, keys: Iterable[str]) -> dict[str, Record]:
        """key -> the configuration a compile uses (workloads with a complete trial only)."""

    # -- selections --------------------------------------------------------------------------
    @abstractmethod
    def put_selection(self, selection: Selection) -> None:
        """Stores (replaces) a workload's implementation-selection timings."""

    @abstractmethod
    def selections(self, keys: Iterable[str]) -> dict[str, Selection]:
        """key -> its selection timings."""

    # -- files -------------------------------------------------------------------------------
    @abstractmethod
    def export(self, path: str | os.PathLike, keys: Iterable[str] | None = None) -> TransferSummary:
        """Writes the workloads (all, or `keys`) with their finished trials, confirmations and
        selections as a JSON-lines file (`woodpecker.database.transfer`)."""

    @abstractmethod
    def import_file(self, path: str | os.PathLike) -> TransferSummary:
        """Merges an exported file: a trial whose configuration the workload has already (same
        `config_key`) is not added again; confirmations merge; the newer selection wins."""

    # -- lifetime ----------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Releases connections and files; the object is unusable afterwards."""

    def __enter__(self) -> TuningDatabase:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"
