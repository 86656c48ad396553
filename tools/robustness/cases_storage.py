# ruff: noqa: E501 - case data (IR, model and command lines) reads best one case a line
"""Bad storages for the tuning database, through `wpk tune`, `wpk run`, `wpk tune-report` and
`CompileOptions(tuning_db=)`: each one line naming the storage, never a traceback, and an
unknown URL scheme never silently a local file."""

from __future__ import annotations

from dataclasses import replace
from textwrap import dedent

from case import Case

K = "storage"

NO_DRIVER = ("import sys, types\n"
             "class _Block:\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] in ('psycopg', 'psycopg2', 'pg8000', 'asyncpg'):\n"
             "            raise ImportError(f'No module named {name!r} (blocked by the case)')\n"
             "sys.meta_path.insert(0, _Block())\n")  # fmt: skip

STORAGES = {  # name: (setup, --db value, check that nothing was created for it)
    "directory": ('Path("db").mkdir()\n', "db", ""),
    "text-file": ('Path("db.txt").write_text("hello, this is not a database\\n" * 50)\n', "db.txt", ""),
    "garbage-sqlite-suffix": ('Path("t.db").write_bytes(b"SQLite format 3\\x00" + b"\\xff" * 4000)\n', "t.db", ""),
    "other-apps-sqlite": ('import sqlite3; c = sqlite3.connect("o.db"); c.execute("create table trials(x)"); '
                          'c.execute("insert into trials values (1)"); c.commit(); c.close()\n', "o.db", ""),
    "corrupt-journal": ('Path("t.journal").write_text("{\\"op\\": 1, \\"bad\\n[[[\\n\\x00\\x01\\n")\n', "t.journal", ""),
    "journal-is-a-directory": ('Path("t.journal").mkdir()\n', "t.journal", ""),
    "under-a-regular-file": ('Path("f").write_text("x")\n', "f/tuning.db", ""),
    "proc-read-only": ("", "/proc/self/tuning.db", ""),
    "foo-scheme": ("", "foo://host/db", "foo:"),
    "redis-scheme": ("", "redis://localhost:6379/0", "redis:"),
    "postgresql-without-driver": (NO_DRIVER, "postgresql://user@localhost/wpk", "postgresql:"),
    "postgresql-no-server": ("", "postgresql://nobody@127.0.0.1:1/none", "postgresql:"),
}  # fmt: skip
ENTRY = {
    "export": '["tune", "--db", DB, "--export-records", "out.jsonl"]',
    "tune": '["tune", "model.onnx", "--db", DB, "--trials", "1", "--in-process", "--no-progress", "--confirm", "0"]',
    "run": '["run", "model.onnx", "--db", DB, "--no-compare", "--repeat", "1"]',
    "report": '["tune-report", "--db", DB, "-o", "report"]',
}
TINY = 'save(model([node("Relu", ["x"], ["y"])], [vi("x", [1, 3, 4, 4])], [vi("y", [1, 3, 4, 4])]))\n'
GUARD = dedent("""
    import atexit, os
    def _no_silent_file():
        made = [p for p in os.listdir(".") if p.startswith({prefix!r})] if {prefix!r} else []
        if made:
            wrong(f"{{DB}} silently became the local file {{made[0]}}")
    atexit.register(_no_silent_file)
""")

CASES: list[Case] = []
for name, (setup, db, prefix) in STORAGES.items():
    for entry, argv in ENTRY.items():
        if entry in ("run", "report") and name not in (
            "directory",
            "text-file",
            "corrupt-journal",
            "foo-scheme",
            "postgresql-without-driver",
            "under-a-regular-file",
        ):
            continue
        code = f"{setup}{TINY}DB = {db!r}\n{GUARD.format(prefix=prefix) if prefix else ''}cli({argv})\n"
        CASES.append(Case(K, f"{entry}-{name}", code, timeout_s=60.0, note=f"--db {db} ({entry})"))
for name in ("directory", "foo-scheme", "postgresql-without-driver"):
    setup, db, _ = STORAGES[name]
    code = (
        f"{setup}import woodpecker\npath = {TINY.strip()}\n"
        f"api(lambda: woodpecker.compile(path, options=woodpecker.CompileOptions(tuning_db={db!r})))\n"
        f"wrong('compiled with tuning_db={db}')\n"
    )
    CASES.append(Case(K, f"api-{name}", code, timeout_s=60.0, note=f"CompileOptions(tuning_db={db!r})"))

# Run with --all only: kept out of the default run so that it stays within ~12 minutes.
EXTENDED = {
    "tune-other-apps-sqlite",
    "tune-under-a-regular-file",
    "report-postgresql-without-driver",
    "tune-journal-is-a-directory",
    "run-under-a-regular-file",
    "report-text-file",
    "tune-postgresql-no-server",
    "report-corrupt-journal",
    "report-under-a-regular-file",
    "tune-proc-read-only",
    "tune-garbage-sqlite-suffix",
}
CASES = [replace(c, extended=True) if c.name in EXTENDED else c for c in CASES]
