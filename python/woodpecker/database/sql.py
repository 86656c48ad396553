"""The SQL backend (SQLite files and PostgreSQL servers) through SQLAlchemy Core.

Writes are exclusive transactions (`woodpecker.database.protocol`): on SQLite `BEGIN IMMEDIATE`
with a busy timeout of `BUSY_TIMEOUT_S` (a second writer waits instead of failing with
"database is locked"), in WAL mode so that readers never wait for a writer; on PostgreSQL
`SELECT ... FOR UPDATE` on the workload's row, with the unique constraints of `sql_tables` as a
backstop (a conflict is retried). Reads are single statements. Records are kept in
`wpk_records`, rewritten by every write that changes a workload's finished trials or
confirmations, so a compile's batched `records` is one indexed SELECT.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, and_, create_engine, delete, event, inspect, or_, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from woodpecker.database import sql_tables as t
from woodpecker.database.base import Since
from woodpecker.database.choice import choose_record, count_trials
from woodpecker.database.errors import DatabaseError
from woodpecker.database.protocol import ConflictError, Counters, Transaction, TransactionalDatabase
from woodpecker.database.schema import (
    SCHEMA_VERSION,
    CandidateTiming,
    Counts,
    Record,
    Selection,
    Trial,
    Workload,
    config_from_json,
    config_to_json,
)

BUSY_TIMEOUT_S = 60.0  # how long an SQLite writer waits for another's transaction
_CHUNK = 500  # keys per IN (...) (SQLite's bound-parameter limit is far above)
_SCHEMA_LOCK = 0x77706B  # PostgreSQL advisory lock held while creating the tables


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _chunks(keys: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start : start + _CHUNK]


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text.strip()


def _trial_row(trial: Trial) -> dict[str, Any]:
    return {
        "key": trial.key,
        "number": trial.number,
        "config": _dumps(config_to_json(trial.config)),
        "config_key": trial.config_key,
        "state": trial.state,
        "strategy": trial.strategy,
        "is_default": trial.is_default,
        "seconds": trial.seconds,
        "times": _dumps(list(trial.times)),
        "relative": trial.relative,
        "error": trial.error,
        "compile_seconds": trial.compile_seconds,
        "worker": trial.worker,
        "claimed_at": trial.claimed_at,
        "finished_at": trial.finished_at,
        "lease_expires": trial.lease_expires,
        "seq": trial.seq,
        "token": trial.token,
    }


def _trial_of(row: Any) -> Trial:
    return Trial(
        key=row.key,
        number=row.number,
        config=config_from_json(json.loads(row.config)),
        config_key=row.config_key,
        state=row.state,
        strategy=row.strategy,
        is_default=bool(row.is_default),
        seconds=row.seconds,
        times=tuple(json.loads(row.times)),
        relative=row.relative,
        error=row.error,
        compile_seconds=row.compile_seconds,
        worker=row.worker,
        claimed_at=row.claimed_at,
        finished_at=row.finished_at,
        lease_expires=row.lease_expires,
        seq=row.seq,
        token=row.token,
    )


def _workload_row(workload: Workload) -> dict[str, Any]:
    data = workload.to_json()
    data["arg_shapes"] = _dumps(data["arg_shapes"])
    data["output_shape"] = _dumps(data["output_shape"])
    data["digest"] = workload.digest
    return data


def _workload_of(row: Any) -> Workload:
    return Workload(
        key=row.key,
        target=row.target,
        device=row.device,
        kind=row.kind,
        template=row.template,
        description=row.description,
        flops=row.flops,
        arg_shapes=json.loads(row.arg_shapes),
        output_shape=json.loads(row.output_shape),
        num_weights=row.num_weights,
        kernel_name=row.kernel_name,
        module_text=row.module_text,
    )


def _record_of(row: Any) -> Record:
    return Record(
        key=row.key,
        number=row.number,
        config=config_from_json(json.loads(row.config)),
        seconds=row.seconds,
        confirmed=bool(row.confirmed),
        strategy=row.strategy,
        default_number=row.default_number,
        default_seconds=row.default_seconds,
        trials=row.trials,
        failures=row.failures,
    )


def _selection_of(row: Any) -> Selection:
    candidates = json.loads(row.candidates)
    return Selection(
        key=row.key,
        generated_config=config_from_json(json.loads(row.generated_config)),
        default_seconds=row.default_seconds,
        candidates={name: CandidateTiming(e.get("seconds"), e.get("error")) for name, e in candidates.items()},
        updated_at=row.updated_at,
    )


class _SqlTransaction(Transaction):
    """One exclusive transaction on a connection."""

    def __init__(self, conn: Any, insert: Any) -> None:
        self.conn = conn
        self.insert = insert  # the dialect's INSERT (with ON CONFLICT)

    def lock_workload(self, key: str) -> Counters | None:
        query = select(t.workloads.c.next_number, t.workloads.c.finish_seq).where(t.workloads.c.key == key)
        row = self.conn.execute(query.with_for_update()).first()
        return None if row is None else Counters(row.next_number, row.finish_seq)

    def set_counters(self, key: str, counters: Counters) -> None:
        self.conn.execute(
            update(t.workloads)
            .where(t.workloads.c.key == key)
            .values(next_number=counters.next_number, finish_seq=counters.finish_seq)
        )

    def workload_trials(self, key: str) -> list[Trial]:
        rows = self.conn.execute(select(t.trials).where(t.trials.c.key == key).order_by(t.trials.c.number))
        return [_trial_of(row) for row in rows]

    def insert_trial(self, trial: Trial) -> None:
        self.conn.execute(t.trials.insert().values(**_trial_row(trial)))

    def update_trial(self, trial: Trial) -> None:
        c = t.trials.c
        self.conn.execute(
            update(t.trials).where(and_(c.key == trial.key, c.number == trial.number)).values(**_trial_row(trial))
        )

    def delete_trial(self, key: str, number: int) -> None:
        c = t.trials.c
        self.conn.execute(delete(t.trials).where(and_(c.key == key, c.number == number)))

    def workload_confirmations(self, key: str) -> dict[int, float | None]:
        rows = self.conn.execute(select(t.confirmations).where(t.confirmations.c.key == key))
        return {row.number: row.seconds for row in rows}

    def set_confirmations(self, key: str, values: Mapping[int, float | None]) -> None:
        for number, seconds in values.items():
            statement = self.insert(t.confirmations).values(key=key, number=number, seconds=seconds)
            statement = statement.on_conflict_do_update(index_elements=["key", "number"], set_={"seconds": seconds})
            self.conn.execute(statement)

    def workload_digests(self, keys: Sequence[str]) -> dict[str, str]:
        found = {}
        for chunk in _chunks(keys):
            query = select(t.workloads.c.key, t.workloads.c.digest).where(t.workloads.c.key.in_(chunk))
            found.update({row.key: row.digest for row in self.conn.execute(query)})
        return found

    def insert_workload(self, workload: Workload) -> None:
        row = _workload_row(workload) | {"next_number": 0, "finish_seq": 0}
        self.conn.execute(self.insert(t.workloads).values(**row).on_conflict_do_nothing(index_elements=["key"]))

    def update_workload(self, workload: Workload) -> None:
        self.conn.execute(
            update(t.workloads).where(t.workloads.c.key == workload.key).values(**_workload_row(workload))
        )

    def selection(self, key: str) -> Selection | None:
        row = self.conn.execute(select(t.selections).where(t.selections.c.key == key)).first()
        return None if row is None else _selection_of(row)

    def put_selection(self, selection: Selection) -> None:
        data = selection.to_json()
        row = {
            "key": selection.key,
            "generated_config": _dumps(data["generated_config"]),
            "default_seconds": selection.default_seconds,
            "candidates": _dumps(data["candidates"]),
            "updated_at": selection.updated_at,
        }
        statement = self.insert(t.selections).values(**row)
        self.conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_=row))

    def changed(self, key: str) -> None:
        record = choose_record(key, self.workload_trials(key), self.workload_confirmations(key))
        self.conn.execute(delete(t.records).where(t.records.c.key == key))
        if record is not None:
            row = {
                "key": key,
                "number": record.number,
                "config": _dumps(config_to_json(record.config)),
                "seconds": record.seconds,
                "confirmed": record.confirmed,
                "strategy": record.strategy,
                "default_number": record.default_number,
                "default_seconds": record.default_seconds,
                "trials": record.trials,
                "failures": record.failures,
            }
            self.conn.execute(t.records.insert().values(**row))


class SqlDatabase(TransactionalDatabase):
    """A tuning database in SQL tables (`sql_tables`): an SQLite file or a PostgreSQL database."""

    def __init__(self, engine: Engine, location: str, *, read_only_reason: str | None = None) -> None:
        super().__init__(location)
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._insert = pg_dialect.insert if self._postgres else sqlite_dialect.insert
        self._read_only_reason = read_only_reason  # why writes are refused (a read-only file system)
        self._empty = False  # read-only and without our tables: every read answers nothing
        with self._guard():
            self._prepare()

    # -- plumbing ----------------------------------------------------------------------------
    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turns SQLAlchemy's errors into one-line DatabaseErrors."""
        try:
            yield
        except SQLAlchemyError as error:
            raise self._translate(error) from None

    def _translate(self, error: SQLAlchemyError) -> DatabaseError:
        orig = getattr(error, "orig", None)
        text = _first_line(str(orig) if orig is not None else str(error))
        lower = text.lower()
        where = self.location
        if isinstance(error, IntegrityError):
            return ConflictError(f"{where}: two writers raced for one trial ({text})")
        if "file is not a database" in lower:
            return DatabaseError(
                f"{where} is not an SQLite database; give --db a new file, or a path ending in .journal for a journal"
            )
        if "readonly" in lower or "read-only" in lower:
            return DatabaseError(f"{where} is read-only ({text}): tuning needs a writable --db")
        if "database is locked" in lower or "database is busy" in lower:
            return DatabaseError(
                f"{where} stayed locked by another writer for {BUSY_TIMEOUT_S:.0f} s: stop the process holding it, "
                f"or give each machine's workers a PostgreSQL --db"
            )
        if "unable to open database file" in lower or "disk i/o error" in lower:
            return DatabaseError(f"{where}: cannot open the SQLite file ({text}): check the path and its permissions")
        if self._postgres and isinstance(error, OperationalError):
            if "does not exist" in lower and "database" in lower:
                return DatabaseError(f"{where}: {text}: create it (createdb) or fix the URL")
            if "authentication failed" in lower or "password" in lower:
                return DatabaseError(f"{where}: {text}: fix the user or password in the URL")
            if "server closed" in lower or "terminating connection" in lower:
                return DatabaseError(f"lost the connection to PostgreSQL at {where} ({text}): run the command again")
            return DatabaseError(
                f"cannot connect to PostgreSQL at {where} ({text}): start the server, or fix the host and port "
                f"in the URL"
            )
        return DatabaseError(f"{where}: {type(error).__name__}: {text}")

    def _refuse_writes(self) -> None:
        if self._read_only_reason is not None:
            reason = self._read_only_reason
            raise DatabaseError(f"{self.location} is read-only ({reason}): tuning needs a writable --db")

    @contextmanager
    def _connection(self, write: bool) -> Iterator[Any]:
        """A connection in an exclusive write transaction, or one for autocommitted reads."""
        options = {"wpk_begin": "IMMEDIATE"} if write and not self._postgres else {}
        with self._guard(), self._engine.connect().execution_options(**options) as conn:
            if not write:
                yield conn
                return
            with conn.begin():
                yield conn

    @contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        self._refuse_writes()
        with self._connection(write=True) as conn:
            yield _SqlTransaction(conn, self._insert)

    def _prepare(self) -> None:
        """Creates the tables when missing; refuses a newer schema."""
        version = self._schema_version()
        if version is None and self._read_only_reason is not None:
            self._empty = True
            return
        if version is None:
            with self._connection(write=True) as conn:
                if self._postgres:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
                t.metadata.create_all(conn)
                row = conn.execute(select(t.meta.c.value).where(t.meta.c.name == "schema_version")).first()
                if row is None:
                    conn.execute(t.meta.insert().values(name="schema_version", value=str(SCHEMA_VERSION)))
                    version = SCHEMA_VERSION
                else:
                    version = int(row.value)
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.location} was written by a newer Woodpecker (schema {version}, this one reads up to "
                f"{SCHEMA_VERSION}): upgrade woodpecker, or give --db another database"
            )

    def _schema_version(self) -> int | None:
        with self._connection(write=False) as conn:
            if not inspect(conn).has_table(t.meta.name):
                return None
            row = conn.execute(select(t.meta.c.value).where(t.meta.c.name == "schema_version")).first()
        if row is None:
            return None
        try:
            return int(row.value)
        except ValueError:
            raise DatabaseError(f"{self.location}: wpk_meta holds schema_version '{row.value}', not a number") from None

    def _rows(self, query_for: Any, keys: Iterable[str]) -> list[Any]:
        """The rows of `query_for(chunk)` over the keys in chunks."""
        if self._empty:
            return []
        rows: list[Any] = []
        with self._connection(write=False) as conn:
            for chunk in _chunks(keys):
                rows.extend(conn.execute(query_for(chunk)))
        return rows

    # -- reads -------------------------------------------------------------------------------
    def workloads(self, keys: Iterable[str]) -> dict[str, Workload]:
        rows = self._rows(lambda chunk: select(t.workloads).where(t.workloads.c.key.in_(chunk)), keys)
        return {row.key: _workload_of(row) for row in rows}

    def keys(self, target: str | None = None, prefix: str | None = None) -> list[str]:
        if self._empty:
            return []
        query = select(t.workloads.c.key).order_by(t.workloads.c.key)
        if target is not None:
            query = query.where(t.workloads.c.target == target)
        if prefix:
            query = query.where(t.workloads.c.key.startswith(prefix, autoescape=True))
        with self._connection(write=False) as conn:
            return [row.key for row in conn.execute(query)]

    def trials(
        self, keys: Iterable[str], *, states: Iterable[str] | None = None, since: Since | None = None
    ) -> dict[str, list[Trial]]:
        c = t.trials.c
        wanted = None if states is None else list(states)

        def query_for(chunk: list[str]) -> Any:
            query = select(t.trials).where(c.key.in_(chunk))
            if wanted is not None:
                query = query.where(c.state.in_(wanted))
            if isinstance(since, int):
                query = query.where(c.seq > since)
            elif since is not None:
                query = query.where(or_(*(and_(c.key == k, c.seq > since.get(k, 0)) for k in chunk)))
            return query.order_by(c.key, c.number)

        keys = list(keys)
        now = time.time()
        found: dict[str, list[Trial]] = {}
        for row in self._rows(query_for, keys):
            trial = _trial_of(row)
            if not self._expired(trial, now):
                found.setdefault(trial.key, []).append(trial)
        return found

    def counts(self, keys: Iterable[str]) -> dict[str, Counts]:
        c = t.trials.c
        keys = list(keys)
        present = set(self.workloads_present(keys))
        now = time.time()
        by_key: dict[str, list[Trial]] = {k: [] for k in present}
        for row in self._rows(lambda chunk: select(t.trials).where(c.key.in_(chunk)), present):
            trial = _trial_of(row)
            if not self._expired(trial, now):
                by_key[trial.key].append(trial)
        return {key: count_trials(trials) for key, trials in by_key.items()}

    def workloads_present(self, keys: Iterable[str]) -> list[str]:
        """The keys among `keys` that name a stored workload."""
        rows = self._rows(lambda chunk: select(t.workloads.c.key).where(t.workloads.c.key.in_(chunk)), keys)
        return [row.key for row in rows]

    def confirmations(self, keys: Iterable[str]) -> dict[str, dict[int, float | None]]:
        found: dict[str, dict[int, float | None]] = {}
        for row in self._rows(lambda chunk: select(t.confirmations).where(t.confirmations.c.key.in_(chunk)), keys):
            found.setdefault(row.key, {})[row.number] = row.seconds
        return found

    def records(self, keys: Iterable[str]) -> dict[str, Record]:
        rows = self._rows(lambda chunk: select(t.records).where(t.records.c.key.in_(chunk)), keys)
        return {row.key: _record_of(row) for row in rows}

    def selections(self, keys: Iterable[str]) -> dict[str, Selection]:
        rows = self._rows(lambda chunk: select(t.selections).where(t.selections.c.key.in_(chunk)), keys)
        return {row.key: _selection_of(row) for row in rows}

    def close(self) -> None:
        self._engine.dispose()


def sqlite_engine(path: Path, *, read_only: bool = False, immutable: bool = False) -> Engine:
    """An engine on the SQLite file `path`: WAL, a busy timeout, transactions begun by us."""
    mode = "ro" if read_only else "rwc"
    uri = f"file:{quote(str(path))}?mode={mode}" + ("&immutable=1" if immutable else "")

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=2, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("wpk_begin")
        if mode:
            conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def postgres_engine(url: str) -> Engine:
    """An engine on a PostgreSQL URL (psycopg2), with a connect timeout."""
    return create_engine(url, connect_args={"connect_timeout": 10}, pool_size=2, max_overflow=8)
