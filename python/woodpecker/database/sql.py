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
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, and_, bindparam, create_engine, delete, event, func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from woodpecker.database import sql_tables as t
from woodpecker.database.base import Since
from woodpecker.database.choice import choose_record
from woodpecker.database.errors import DatabaseError
from woodpecker.database.liveness import claim_expired
from woodpecker.database.protocol import ConflictError, Counters, Transaction, TransactionalDatabase
from woodpecker.database.schema import (
    COMPLETE,
    FAILED,
    RUNNING,
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


class _Statements:
    """The statements of the claim protocol's hot path, built once per database (binds: b_*)."""

    def __init__(self, insert: Any) -> None:
        c, w, f = t.trials.c, t.workloads.c, t.confirmations.c
        key, number = bindparam("b_key"), bindparam("b_number")
        self.insert = insert  # the dialect's INSERT (with ON CONFLICT)
        self.lock = select(w.next_number, w.finish_seq).where(w.key == key).with_for_update()
        self.set_counters = update(t.workloads).where(w.key == key)
        self.trials = select(t.trials).where(c.key == key).order_by(c.number)
        self.running = select(t.trials).where(c.key == key, c.state == RUNNING)
        self.count = select(func.count()).select_from(t.trials).where(c.key == key)
        self.by_number = select(t.trials).where(c.key == key, c.number == number)
        self.by_config = select(t.trials).where(c.key == key, c.config_key == bindparam("b_config_key"))
        self.insert_trial = t.trials.insert()
        self.update_trial = update(t.trials).where(c.key == key, c.number == number)
        self.delete_trial = delete(t.trials).where(c.key == key, c.number == number)
        self.confirmations = select(f.number, f.seconds).where(f.key == key)
        upsert = insert(t.confirmations)
        self.set_confirmation = upsert.on_conflict_do_update(
            index_elements=["key", "number"], set_={"seconds": upsert.excluded.seconds}
        )
        self.by_state = select(c.state, func.count().label("n")).where(c.key == key).group_by(c.state)
        complete = select(t.trials).where(c.key == key, c.state == COMPLETE, c.seconds.is_not(None))
        self.lowest = complete.order_by(c.seconds, c.number).limit(bindparam("b_limit"))
        self.default = complete.where(c.is_default.is_(True)).order_by(c.number).limit(1)
        self.confirmed = complete.where(c.number.in_(bindparam("b_numbers", expanding=True)))
        upsert = insert(t.records)
        columns = [column.name for column in t.records.columns if column.name != "key"]
        self.put_record = upsert.on_conflict_do_update(
            index_elements=["key"], set_={name: getattr(upsert.excluded, name) for name in columns}
        )
        self.delete_record = delete(t.records).where(t.records.c.key == key)


class _SqlTransaction(Transaction):
    """One exclusive transaction on a connection."""

    def __init__(self, conn: Any, statements: _Statements) -> None:
        self.conn = conn
        self.q = statements
        self.insert = statements.insert

    def _trial(self, query: Any, **binds: Any) -> Trial | None:
        row = self.conn.execute(query, binds).first()
        return None if row is None else _trial_of(row)

    def lock_workload(self, key: str) -> Counters | None:
        row = self.conn.execute(self.q.lock, {"b_key": key}).first()
        return None if row is None else Counters(row.next_number, row.finish_seq)

    def set_counters(self, key: str, counters: Counters) -> None:
        values = {"b_key": key, "next_number": counters.next_number, "finish_seq": counters.finish_seq}
        self.conn.execute(self.q.set_counters, values)

    def workload_trials(self, key: str) -> list[Trial]:
        return [_trial_of(row) for row in self.conn.execute(self.q.trials, {"b_key": key})]

    def running_trials(self, key: str) -> list[Trial]:
        return [_trial_of(row) for row in self.conn.execute(self.q.running, {"b_key": key})]

    def trial_count(self, key: str) -> int:
        return self.conn.execute(self.q.count, {"b_key": key}).scalar_one()

    def trial_by_number(self, key: str, number: int) -> Trial | None:
        return self._trial(self.q.by_number, b_key=key, b_number=number)

    def trial_by_config(self, key: str, config_key: str) -> Trial | None:
        return self._trial(self.q.by_config, b_key=key, b_config_key=config_key)

    def insert_trial(self, trial: Trial) -> None:
        self.conn.execute(self.q.insert_trial, _trial_row(trial))

    def update_trial(self, trial: Trial) -> None:
        row = _trial_row(trial)
        del row["key"], row["number"]
        self.conn.execute(self.q.update_trial, {**row, "b_key": trial.key, "b_number": trial.number})

    def delete_trial(self, key: str, number: int) -> None:
        self.conn.execute(self.q.delete_trial, {"b_key": key, "b_number": number})

    def workload_confirmations(self, key: str) -> dict[int, float | None]:
        return {row.number: row.seconds for row in self.conn.execute(self.q.confirmations, {"b_key": key})}

    def set_confirmations(self, key: str, values: Mapping[int, float | None]) -> None:
        for number, seconds in values.items():
            self.conn.execute(self.q.set_confirmation, {"key": key, "number": number, "seconds": seconds})

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
        record = self._record(key)
        if record is None:
            self.conn.execute(self.q.delete_record, {"b_key": key})
            return
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
        self.conn.execute(self.q.put_record, row)

    def _record(self, key: str) -> Record | None:
        """The workload's record from its candidate trials only (see `choose_record`): a few
        indexed queries, however many trials the workload has."""
        confirmations = self.workload_confirmations(key)
        by_state = {row.state: row.n for row in self.conn.execute(self.q.by_state, {"b_key": key})}
        counts = Counts(by_state.get(RUNNING, 0), by_state.get(COMPLETE, 0), by_state.get(FAILED, 0))
        if not counts.complete:
            return None
        failed_confirmations = sum(1 for value in confirmations.values() if value is None)
        queries = [
            (self.q.lowest, {"b_key": key, "b_limit": failed_confirmations + 1}),
            (self.q.default, {"b_key": key}),
        ]
        if confirmations:
            queries.append((self.q.confirmed, {"b_key": key, "b_numbers": list(confirmations)}))
        candidates = {}
        for query, binds in queries:
            for row in self.conn.execute(query, binds):
                candidates[row.number] = _trial_of(row)
        return choose_record(key, candidates.values(), confirmations, counts)


class SqlDatabase(TransactionalDatabase):
    """A tuning database in SQL tables (`sql_tables`): an SQLite file or a PostgreSQL database."""

    def __init__(self, engine: Engine, location: str, *, read_only_reason: str | None = None) -> None:
        super().__init__(location)
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        if self._postgres:  # each dialect's INSERT ... ON CONFLICT (imported only when used)
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self._statements = _Statements(insert)
        self._read_only_reason = read_only_reason  # why writes are refused (a read-only file system)
        self._empty = False  # read-only and without our tables: every read answers nothing
        self._pid = os.getpid()
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
        if "malformed" in lower or "not a database" in lower or "corrupt" in lower:
            return DatabaseError(
                f"{where}: the SQLite file is damaged ({text}): restore it from a copy, or give --db a new file"
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
        if self._pid != os.getpid():  # a forked child: never use the parent's connections
            self._engine.dispose(close=False)
            self._pid = os.getpid()
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
            yield _SqlTransaction(conn, self._statements)

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
        now = time.time()
        tallies: dict[str, dict[str, int]] = {key: {} for key in self.workloads_present(keys)}

        def finished(chunk: list[str]) -> Any:
            query = select(c.key, c.state, func.count().label("n")).where(c.key.in_(chunk), c.state != RUNNING)
            return query.group_by(c.key, c.state)

        for row in self._rows(finished, tallies):
            tallies[row.key][row.state] = row.n
        running = lambda chunk: select(c.key, c.worker, c.lease_expires).where(c.key.in_(chunk), c.state == RUNNING)  # noqa: E731
        for row in self._rows(running, tallies):
            if not claim_expired(row.worker, row.lease_expires, now, self._host):
                tallies[row.key][RUNNING] = tallies[row.key].get(RUNNING, 0) + 1
        return {
            key: Counts(tally.get(RUNNING, 0), tally.get(COMPLETE, 0), tally.get(FAILED, 0))
            for key, tally in tallies.items()
        }

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
