"""Opening a tuning database by path or URL, with one-line errors for every bad location.

* nothing given: `$WOODPECKER_TUNING_DB`, else `$XDG_CACHE_HOME/woodpecker/tuning.db` (default
  `~/.cache/woodpecker/tuning.db`);
* a path ending in `.journal`, or `journal:///path`: a journal file (several processes on one
  machine, no server);
* `sqlite:///path`, or any other path: an SQLite file (created with its folders when missing);
* `postgresql://user:password@host:port/database` (or `postgres://`, `postgresql+psycopg2://`):
  a PostgreSQL database (several machines), through psycopg2 (`pip install 'woodpecker[postgres]'`).

Any other `scheme://` is refused, never taken for a local file. A local file that exists on a
read-only file system (or without write permission) is opened read-only: reads work, writes are
a DatabaseError.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from woodpecker.database.base import TuningDatabase
from woodpecker.database.errors import DatabaseError

ENV_VAR = "WOODPECKER_TUNING_DB"
JOURNAL_SUFFIX = ".journal"
SCHEMES = ("sqlite", "journal", "postgresql")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg2")
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Location:
    """Where a database is: a local file (sqlite, journal) or a server URL (postgresql)."""

    kind: str  # "sqlite" | "journal" | "postgresql"
    path: Path | None = None
    url: str | None = None


def default_db_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "woodpecker" / "tuning.db"


def default_location() -> str:
    return os.environ.get(ENV_VAR) or str(default_db_path())


def parse_location(target: str | os.PathLike | None = None) -> Location:
    """Where `target` (None: the default) points; an unknown URL scheme is a DatabaseError."""
    text = default_location() if target is None else os.fspath(target)
    if not text.strip():
        raise DatabaseError("empty tuning database location: give --db a path or a postgresql:// URL")
    match = _SCHEME.match(text)
    if match is None:
        path = Path(text).expanduser()
        return Location("journal" if path.suffix == JOURNAL_SUFFIX else "sqlite", path=path)
    scheme = match.group(1).lower()
    if scheme in ("sqlite", "journal"):
        rest = text[len(match.group(0)) :]
        if not rest.startswith("/") or rest == "/":
            raise DatabaseError(
                f"'{text}' names no file: write {scheme}:///relative/path or {scheme}:////absolute/path"
            )
        return Location(scheme, path=Path(rest[1:]).expanduser())
    if scheme in _POSTGRES_SCHEMES:
        return Location("postgresql", url="postgresql+psycopg2://" + text[len(match.group(0)) :])
    raise DatabaseError(
        f"'{text}': unknown database scheme '{scheme}://'; Woodpecker stores tuning records in a file path "
        f"(SQLite, or .journal), sqlite:///path, journal:///path or postgresql://"
    )


def database_exists(target: str | os.PathLike | None = None) -> bool:
    """False for a local file that is not there (nothing recorded yet: compile need not open it).

    A location that can never be a database is a DatabaseError all the same: an unknown scheme,
    or a path under a regular file (a mistyped --db)."""
    location = parse_location(target)
    if location.path is None or location.path.exists():
        return True
    ancestor = location.path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise DatabaseError(f"{location.path} cannot be a database: {ancestor} is a file, not a directory")
    return False


def open_database(target: str | os.PathLike | None = None) -> TuningDatabase:
    """The tuning database at `target` (None: the default), created when it is a missing local file."""
    location = parse_location(target)
    if location.kind == "postgresql":
        return _open_postgres(location.url or "")
    path = location.path
    assert path is not None
    read_only = _prepare_local(path)
    if location.kind == "journal":
        from woodpecker.database.journal import JournalDatabase

        return JournalDatabase(path, read_only_reason=read_only)
    _check_sqlite_file(path)
    from woodpecker.database.sql import SqlDatabase, sqlite_engine

    immutable = read_only is not None and _read_only_fs(path.parent)
    engine = sqlite_engine(path, read_only=read_only is not None, immutable=immutable)
    return SqlDatabase(engine, str(path), read_only_reason=read_only)


def _read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _why_not_writable(path: Path) -> str:
    return "read-only file system" if _read_only_fs(path if path.is_dir() else path.parent) else "permission denied"


def _prepare_local(path: Path) -> str | None:
    """Checks a local database path, creating its folders when the file is missing; returns
    why it must be opened read-only (None: writable)."""
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory: give --db a file path, e.g. {path / 'tuning.db'}")
    if path.exists():
        if not os.access(path, os.R_OK):
            raise DatabaseError(f"{path}: permission denied: give --db a file you can read")
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
        return None if writable else _why_not_writable(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise DatabaseError(f"cannot create {path}: {ancestor} is a file, not a directory: give --db another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DatabaseError(
            f"cannot create {path}: {ancestor} is not writable ({_why_not_writable(ancestor)}): "
            f"give --db a path on a writable file system"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(f"cannot create {path.parent}: {error.strerror or error}: give --db another path") from None
    return None


def _check_sqlite_file(path: Path) -> None:
    """Refuses an existing non-empty file that is no SQLite database (a text file, a journal)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as error:
        raise DatabaseError(f"cannot read {path}: {error.strerror or error}") from None
    if not head or head == _SQLITE_MAGIC:
        return
    hint = ""
    if head.lstrip().startswith(b"{"):
        hint = " (it holds JSON lines: a journal, whose path must end in .journal, or an Optuna journal)"
    raise DatabaseError(f"{path} is not an SQLite database{hint}: give --db another path")


def _open_postgres(url: str) -> TuningDatabase:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        shown = make_url(url).set(drivername="postgresql").render_as_string(hide_password=True)
    except ArgumentError as error:
        raise DatabaseError(f"not a valid PostgreSQL URL ({error}): write postgresql://user@host:port/db") from None
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise DatabaseError(
            f"{shown} needs the PostgreSQL driver psycopg2: pip install 'woodpecker[postgres]'"
        ) from None
    from woodpecker.database.sql import SqlDatabase, postgres_engine

    return SqlDatabase(postgres_engine(url), shown)
