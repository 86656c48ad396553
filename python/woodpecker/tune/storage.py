"""Where tuning records live: an Optuna storage chosen by a URL or a path.

* nothing given: `$WOODPECKER_TUNING_DB`, else the SQLite file `~/.cache/woodpecker/tuning.db`
  (`$XDG_CACHE_HOME` is honoured);
* `sqlite:///path.db`, `postgresql://...`, `mysql://...`: an Optuna RDB storage. Several
  `wpk tune` processes on several machines pointed at one server database share the studies;
* a path ending in `.journal` or `.log` (or `journal:///path`): Optuna's JournalStorage with a
  file backend and file locks, for several tuning processes on one machine (SQLite would
  answer `database is locked` to concurrent writers);
* any other path: an SQLite file at that path.

Layout of the records (read by `records`, `report` and `wpk tune-report`):

* one study per kernel signature, named `KernelTask.key`, minimizing seconds. Study user
  attributes: `task` (the KernelTask fields but the module text), `module_text`,
  `default_seconds` once the default configuration was measured.
* one trial per measured configuration: params (see `params.encode`), value = median seconds.
  Trial user attributes: `config` (JSON), `strategy` ("ga", "tpe", "random", "default",
  "import"), `times`, `compile_seconds`; `error` on failed trials (state FAIL); `is_default`
  on the default configuration's trial.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

ENV_VAR = "WOODPECKER_TUNING_DB"
JOURNAL_SUFFIXES = (".journal", ".log")
_SERVER_SCHEMES = ("sqlite://", "postgresql", "mysql", "oracle", "mssql")


def default_db_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "woodpecker" / "tuning.db"


def default_url() -> str:
    return os.environ.get(ENV_VAR) or f"sqlite:///{default_db_path()}"


def normalize_url(url: str | os.PathLike | None) -> str:
    """The storage URL for `url` (None: the default), with journal files as `journal:///path`."""
    text = default_url() if url is None else os.fspath(url)
    if text.startswith("journal://"):
        return text
    if text.startswith(_SERVER_SCHEMES):
        return text
    path = Path(text).expanduser()
    if path.suffix in JOURNAL_SUFFIXES:
        return f"journal:///{path.resolve()}"
    return f"sqlite:///{path.resolve()}"


def storage_exists(url: str | os.PathLike | None) -> bool:
    """False for a local file that is not there yet (nothing recorded): compile skips it."""
    text = normalize_url(url)
    for prefix in ("sqlite:///", "journal:///"):
        if text.startswith(prefix):
            return Path(text[len(prefix) :]).exists()
    return True


def open_storage(url: str | os.PathLike | None = None) -> BaseStorage:
    """The Optuna storage for `url` (created when it is a local file that does not exist)."""
    text = normalize_url(url)
    if text.startswith("journal:///"):
        path = Path(text[len("journal:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = optuna.storages.journal.JournalFileOpenLock(str(path))
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))
    if text.startswith("sqlite:///"):
        Path(text[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        # Wait for a concurrent writer instead of failing at once with `database is locked`.
        return RDBStorage(text, engine_kwargs={"connect_args": {"timeout": 60}})
    return RDBStorage(text)
