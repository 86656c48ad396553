"""Tuning storage that cannot be used, through the API (`woodpecker.database.open_database`) and
every command that takes `--db` (`wpk tune`, `wpk tune-report`, `wpk run`, `wpk compile`): one
`DatabaseError` line naming the storage and the fix, exit status 1 (or 2), never a traceback and
never a silent local file for an unknown URL scheme.

The cases really fail as root (the tests run as root, so permission bits stop nothing): a
directory, a text file, a damaged SQLite file, a journal with a garbage line, a path under a
regular file, a location in /proc (not writable even for root), an unknown scheme, and
PostgreSQL with its driver blocked from importing.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from woodpecker.cli.main import main
from woodpecker.database import DatabaseError, open_database
from woodpecker.models import bundled_model_path


def _damaged_sqlite(tmp: Path) -> str:
    path = tmp / "damaged.db"
    open_database(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE padding (x)")
        conn.executemany("INSERT INTO padding VALUES (?)", [("x" * 500,)] * 500)
    conn.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # a copy cut short
    return str(path)


def _garbage_journal(tmp: Path) -> str:
    path = tmp / "t.journal"
    open_database(path).close()
    with path.open("a") as f:
        f.write("not json at all\n")
        f.write('{"ops": []}\n')
    return str(path)


def _text_file(tmp: Path) -> str:
    (tmp / "notes.db").write_text("these are my notes\n")
    return str(tmp / "notes.db")


def _directory(tmp: Path) -> str:
    (tmp / "records").mkdir()
    return str(tmp / "records")


def _under_a_file(tmp: Path) -> str:
    (tmp / "plain").write_text("x")
    return str(tmp / "plain" / "sub" / "tuning.db")


# name -> (make the --db value in a directory, words the one line must hold)
CASES: dict[str, tuple[Callable[[Path], str], tuple[str, ...]]] = {
    "directory": (_directory, ("records", "is a directory", "give --db a file path")),
    "text file": (_text_file, ("notes.db", "not an SQLite database", "give --db")),
    "damaged sqlite": (_damaged_sqlite, ("damaged.db", "damaged", "restore it", "give --db a new file")),
    "garbage journal line": (_garbage_journal, ("t.journal", "line 2", "restore the file")),
    "under a regular file": (_under_a_file, ("plain", "is a file, not a directory")),
    "unknown scheme foo": (lambda tmp: "foo://somewhere/x", ("foo://", "unknown database scheme", "postgresql://")),
    "unknown scheme redis": (lambda tmp: "redis://localhost:6379/0", ("redis://", "unknown database scheme")),
}
# Creating a database there fails even for root: /proc is not writable (only `tune` creates one;
# the other commands read records and take a missing file for "no records").
NOT_WRITABLE = ("/proc/self/tuning.journal", ("/proc/self", "not writable", "give --db a path on a writable"))


def _commands(db: str, tmp: Path) -> dict[str, list[str]]:
    model = str(bundled_model_path())
    return {
        "tune": ["tune", model, "--db", db, "--trials", "1", "--no-progress"],
        "tune-report": ["tune-report", "--db", db, "-o", str(tmp / "report")],
        "run": ["run", model, "--db", db],
        "compile": ["compile", model, "--db", db],
    }


STORAGE_LINE = re.compile(r"wpk [a-z-]+: tuning records: ")


def _one_line(text: str, *words: str) -> str:
    # a command first says which storage it uses (`wpk run: tuning records: DB (read only)`)
    text = "".join(line for line in text.splitlines(keepends=True) if not STORAGE_LINE.match(line))
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert "Traceback" not in text, text
    for word in words:
        assert word in text, (word, text)
    return text


@pytest.mark.parametrize("case", list(CASES))
def test_the_api_refuses_bad_storage_in_one_line(case: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    make, words = CASES[case]
    db = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DatabaseError) as excinfo:
        open_database(db)
    _one_line(f"{excinfo.value}\n", *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created or removed


@pytest.mark.parametrize("command", ["tune", "tune-report", "run", "compile"])
@pytest.mark.parametrize("case", list(CASES))
def test_every_db_option_refuses_bad_storage_in_one_line(
    case: str, command: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    make, words = CASES[case]
    argv = _commands(make(tmp_path), tmp_path)[command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (1, 2), (code, err)
    _one_line(err, f"wpk {command}: error: ", *words)


def test_tune_refuses_a_location_it_cannot_create(tmp_path: Path, monkeypatch, capsys) -> None:
    db, words = NOT_WRITABLE
    with pytest.raises(DatabaseError) as excinfo:
        open_database(db)
    _one_line(f"{excinfo.value}\n", *words)
    assert main(_commands(db, tmp_path)["tune"]) == 1
    _one_line(capsys.readouterr().err, "wpk tune: error: ", *words)


@pytest.mark.parametrize("command", ["tune", "tune-report", "run", "compile"])
def test_postgresql_without_its_driver_names_the_package(command: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # `import psycopg2` raises ImportError
    url = "postgresql://wpk:secret@127.0.0.1:5432/tuning"
    words = ("127.0.0.1", "psycopg2", "pip install 'woodpecker[postgres]'")
    with pytest.raises(DatabaseError) as excinfo:
        open_database(url)
    assert "secret" not in _one_line(f"{excinfo.value}\n", *words)
    assert main(_commands(url, tmp_path)[command]) == 1
    assert "secret" not in _one_line(capsys.readouterr().err, f"wpk {command}: error: ", *words)


def test_an_unknown_scheme_never_becomes_a_local_file(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("foo://x", "redis://localhost/0", "mysql://u@h/db"):
        assert main(["tune", "--db", url, "--trials", "1", "--no-progress"]) == 1
        _one_line(capsys.readouterr().err, "unknown database scheme")
    assert list(tmp_path.iterdir()) == []
