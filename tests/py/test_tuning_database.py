"""The tuning database as every command sees it: a storage that cannot be used is one error line
(`wpk <command>: error: ...`, exit status 1; a DatabaseError from the API), Ctrl-C during
`wpk tune` gives its claim back and says what was kept, old Optuna storages are imported
(`wpk tune --import-optuna`), and `wpk tune-report` on selection timings alone says so.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import woodpecker
from woodpecker.cli.main import main as wpk_main
from woodpecker.compiler import CompileOptions
from woodpecker.database import (
    COMPLETE,
    FAILED,
    RUNNING,
    CandidateTiming,
    DatabaseError,
    Selection,
    Workload,
    open_database,
)
from woodpecker.errors import WoodpeckerError
from woodpecker.models import bundled_model_path

TESTS = Path(__file__).resolve().parent
MODEL = str(bundled_model_path())
KEY = "cpu.matmul.256x256.0123456789ab"


# -- storage errors --------------------------------------------------------------------------------


def _directory(tmp: Path) -> str:
    (tmp / "dir").mkdir()
    return str(tmp / "dir")


def _text_file(tmp: Path) -> str:
    (tmp / "notes.db").write_text("hello world\n")
    return str(tmp / "notes.db")


def _corrupt_journal(tmp: Path) -> str:
    path = tmp / "bad.journal"
    open_database(path).close()
    with path.open("a") as handle:
        handle.write("this line is no transaction\n")
    return str(path)


def _under_a_file(tmp: Path) -> str:
    (tmp / "file").write_text("x")
    return str(tmp / "file" / "sub" / "t.db")


def _unknown_scheme(tmp: Path) -> str:
    return "redis://localhost:6379/0"


def _postgres_without_driver(tmp: Path) -> str:
    return "postgresql://wpk@127.0.0.1:1/tuning"


BAD_LOCATIONS: dict[str, tuple[Callable[[Path], str], str]] = {
    "a directory": (_directory, "is a directory"),
    "a text file": (_text_file, "not an SQLite database"),
    "a corrupt journal": (_corrupt_journal, "line 2"),
    "under a regular file": (_under_a_file, "not a directory"),
    "an unknown scheme": (_unknown_scheme, "unknown database scheme"),
    "postgresql without psycopg2": (_postgres_without_driver, "psycopg2"),
}
COMMANDS = {
    "tune": [
        "tune",
        MODEL,
        "--kernel",
        "k9_matmul",
        "--layout",
        "nchw",
        "--trials",
        "1",
        "--in-process",
        "--no-progress",
        "--no-end-to-end",
    ],
    "run": ["run", MODEL, "--no-compare", "--repeat", "1"],
    "compile": ["compile", MODEL],
    "tune-report": ["tune-report", "-o", "{out}"],
}


@pytest.fixture
def bad_location(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    make, words = BAD_LOCATIONS[request.param]
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as if woodpecker[postgres] were not installed
    return make(tmp_path), words


def _one_error_line(err: str, prog: str, words: str) -> None:
    # the line saying which storage the command uses comes first; then one error line
    lines = [line for line in err.strip().splitlines() if not line.startswith(f"{prog}: tuning records: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: ") and words in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("bad_location", list(BAD_LOCATIONS), indirect=True)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_storage_that_cannot_be_used_is_one_line(command, bad_location, tmp_path, capsys) -> None:
    location, words = bad_location
    args = [a.replace("{out}", str(tmp_path / "out")) for a in COMMANDS[command]]
    assert wpk_main([*args, "--db", location]) == 1
    _one_error_line(capsys.readouterr().err, f"wpk {command}", words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad_location", list(BAD_LOCATIONS), indirect=True)
def test_compile_raises_a_database_error(bad_location) -> None:
    location, words = bad_location
    with pytest.raises(DatabaseError, match=words) as excinfo:
        woodpecker.compile(MODEL, options=CompileOptions(tuning_db=location, libraries="none"))
    assert isinstance(excinfo.value, WoodpeckerError) and "\n" not in str(excinfo.value)


@pytest.fixture
def read_only_db(tmp_path: Path) -> Iterator[Path]:
    """A database with one workload on a tmpfs remounted read-only."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with open_database(mount / "t.db") as db:
            db.add_workloads([_workload()])
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "t.db"
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_read_only_database_is_read_but_not_tuned(read_only_db: Path, capsys) -> None:
    assert wpk_main([*COMMANDS["tune"], "--db", str(read_only_db)]) == 1
    _one_error_line(capsys.readouterr().err, "wpk tune", "read-only")
    compiled = woodpecker.compile(MODEL, options=CompileOptions(tuning_db=str(read_only_db), libraries="none"))
    assert compiled.stats.tuned_kernels == 0  # read: it holds no records of these kernels


# -- Ctrl-C ----------------------------------------------------------------------------------------


def test_ctrl_c_gives_the_claim_back_and_says_what_was_kept(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    log = tmp_path / "calls.json"
    args = ["tune", MODEL, "--db", db, "--kernel", "k0_conv", "--trials", "20", "--in-process", "--no-progress"]
    command = [sys.executable, str(TESTS / "tune_worker.py"), "0.5", str(tmp_path / "barrier"), "1", str(log),
               "--", *args]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # interrupt it while it measures, after two trials
            time.sleep(0.1)
            if Path(db).exists() and _states(db).count(COMPLETE) >= 2 and RUNNING in _states(db):
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (out, err)
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("wpk tune: tuning records: "))
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    kept = _states(db)
    assert RUNNING not in kept  # the claim being measured was released
    assert len(kept) >= 2 and all(state == COMPLETE for state in kept)
    assert err.startswith(f"wpk tune: interrupted: {len(kept)} trials measured by this run are kept in {db}")
    assert len(json.loads(log.read_text())) == len(kept)  # nothing measured was lost
    done = subprocess.run([sys.executable, str(TESTS / "tune_worker.py"), "0", str(tmp_path / "again"), "1",
                           str(log), "--", *args], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert _states(db).count(COMPLETE) == 20  # the same command went on


def test_ctrl_c_with_the_real_worker_ends_in_one_summary_line(tmp_path: Path) -> None:
    """The default (isolated) CPU runner on the bundled model: Ctrl-C reaches the worker process
    too (one process group), which must not print a traceback; the tuner's one line says how many
    trials were kept, where, and the best time so far."""
    db = str(tmp_path / "t.journal")
    command = [sys.executable, "-m", "woodpecker.cli.main", "tune", MODEL, "--db", db, "--kernel", "k9_matmul",
               "--layout", "nchw", "--trials", "40", "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            if Path(db).exists() and _states(db).count(COMPLETE) >= 1:
                break
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C does: to the whole process group
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    kept = _states(db)
    assert RUNNING not in kept and 1 <= kept.count(COMPLETE) < 40
    (line,) = [text for text in err.splitlines() if text.startswith("wpk tune: interrupted: ")]
    assert line == err.strip().splitlines()[-1]
    assert f"{kept.count(COMPLETE)} trials measured by this run are kept in {db} (0 of 1 kernels finished)" in line
    assert re.search(r"best so far for matmul .*: \d+\.\d{4} ms", line), line


def _states(db: str) -> list[str]:
    try:
        with open_database(db) as database:
            return [t.state for ts in database.trials(database.keys()).values() for t in ts]
    except DatabaseError:  # created just now by the worker
        return []


# -- old Optuna storages ---------------------------------------------------------------------------


def _workload(key: str = KEY) -> Workload:
    return Workload(
        key=key,
        target="cpu",
        device="test cpu",
        kind="matmul",
        template="cpu.matmul",
        description="matmul 256x256 * 256x256",
        flops=2 * 256**3,
        arg_shapes=((256, 256), (256, 256)),
        output_shape=(256, 256),
        num_weights=1,
        kernel_name="k0_matmul",
        module_text="module {}",
    )


def _old_storage(path: Path) -> None:
    """What `wpk tune` wrote before the database: one Optuna study per kernel signature."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from woodpecker.tune.migrate import open_optuna_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if path.suffix == ".journal":
        storage: object = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    else:
        storage = f"sqlite:///{path}"
    dists = {"tile": CategoricalDistribution([16, 32, 64]), "shape": CategoricalDistribution(["t:64x128", "t:32x32"])}
    study = optuna.create_study(study_name=KEY, storage=storage)
    task = _workload().to_json()
    del task["module_text"]
    study.set_user_attr("task", {**task, "model_kernels": ["k0_matmul"]})
    study.set_user_attr("module_text", "module {}")
    study.set_user_attr("default_seconds", 2e-3)
    study.set_user_attr("confirmed_seconds", {"0": 2.1e-3, "1": 1.4e-3, "2": float("inf")})
    study.set_user_attr("selection", {"generated_config": {"tile": 32, "shape": [64, 128]}, "default_seconds": 2e-3,
                                      "candidates": {"generated": {"seconds": 1.4e-3, "error": None},
                                                     "blas": {"seconds": 1.1e-3, "error": None}}})  # fmt: skip

    def add(params, value, state=TrialState.COMPLETE, **attrs):
        if "config" in attrs:
            attrs["config"] = json.dumps(attrs["config"])
        study.add_trial(create_trial(params=params, distributions=dists, value=value, state=state, user_attrs=attrs))

    add({"tile": 16, "shape": "t:64x128"}, 2e-3, config={"tile": 16, "shape": [64, 128]}, strategy="default",
        is_default=True, times=[2e-3] * 3)  # fmt: skip
    add({"tile": 32, "shape": "t:64x128"}, 1.5e-3, strategy="ga", times=[1.5e-3] * 3)  # no config: from params
    add({"tile": 64, "shape": "t:64x128"}, 1.0e-3, config={"tile": 64, "shape": [64, 128]}, strategy="ga")  # lucky
    add({"tile": 64, "shape": "t:32x32"}, None, TrialState.FAIL, config={"tile": 64, "shape": [32, 32]},
        strategy="tpe", error="compile error: boom")  # fmt: skip
    add({"tile": 32, "shape": "t:64x128"}, 1.6e-3, strategy="ga")  # measured twice by two old workers
    add({"tile": 16, "shape": "t:32x32"}, None, TrialState.PRUNED)  # never measured
    other = optuna.create_study(study_name="not-a-kernel", storage=storage)
    other.set_user_attr("note", "no task")
    open_optuna_storage(path)  # readable as an Optuna storage


@pytest.mark.parametrize("suffix", [".db", ".journal"])
def test_import_optuna_copies_the_old_records(suffix: str, tmp_path: Path, capsys) -> None:
    old = tmp_path / f"old{suffix}"
    _old_storage(old)
    db = str(tmp_path / "new.db")
    assert wpk_main(["tune", "--import-optuna", str(old), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "imported 1 workloads from 2 Optuna studies" in out and "4 new trials (1 already there)" in out
    assert "skipped 1 studies (not-a-kernel: no task attribute" in out
    with open_database(db) as database:
        (workload,) = database.workloads(database.keys()).values()
        trials = database.trials([KEY])[KEY]
        confirmations = database.confirmations([KEY])[KEY]
        record = database.records([KEY])[KEY]
        selection = database.selections([KEY])[KEY]
    assert workload == _workload()
    assert [(t.number, t.state) for t in trials] == [(0, COMPLETE), (1, COMPLETE), (2, COMPLETE), (3, FAILED)]
    assert trials[1].config == {"tile": 32, "shape": (64, 128)}  # decoded from the Optuna params
    assert trials[0].is_default and trials[0].times == (2e-3,) * 3 and trials[3].error == "compile error: boom"
    assert confirmations == {0: 2.1e-3, 1: 1.4e-3, 2: None}
    # the record: the confirmed fastest, not the lucky trial whose re-measurement failed
    assert (record.number, record.seconds, record.confirmed, record.default_seconds) == (1, 1.4e-3, True, 2.1e-3)
    assert selection.candidates == {"generated": CandidateTiming(1.4e-3), "blas": CandidateTiming(1.1e-3)}
    assert selection.generated_config == {"tile": 32, "shape": (64, 128)}
    assert wpk_main(["tune", "--import-optuna", str(old), "--db", db]) == 0  # again: nothing new
    assert "0 new trials (5 already there)" in capsys.readouterr().out


def test_import_optuna_in_place_and_bad_sources(tmp_path: Path, capsys) -> None:
    old = tmp_path / "tuning.db"  # the default file of both: the database's tables sit beside Optuna's
    _old_storage(old)
    assert wpk_main(["tune", "--import-optuna", str(old), "--db", str(old)]) == 0
    with open_database(old) as database:
        assert database.records([KEY])[KEY].number == 1
    capsys.readouterr()
    assert wpk_main(["tune", "--import-optuna", str(tmp_path / "missing.db"), "--db", str(old)]) == 1
    _one_error_line(capsys.readouterr().err, "wpk tune", "no Optuna storage")
    assert not (tmp_path / "missing.db").exists()
    with open_database(tmp_path / "wpk.db"):
        pass
    assert wpk_main(["tune", "--import-optuna", str(tmp_path / "wpk.db"), "--db", str(old)]) == 1
    _one_error_line(capsys.readouterr().err, "wpk tune", "no readable Optuna storage")


# -- the report --------------------------------------------------------------------------------------


def test_tune_report_of_selection_timings_only_says_so(tmp_path: Path, capsys) -> None:
    db = tmp_path / "t.db"
    with open_database(db) as database:
        database.add_workloads([_workload()])
        database.put_selection(Selection(KEY, {}, 2e-3, {"generated": CandidateTiming(2e-3),
                                                          "blas": CandidateTiming(1e-3)}))  # fmt: skip
    out_dir = tmp_path / "report"
    assert wpk_main(["tune-report", "--db", str(db), "-o", str(out_dir)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "no tuning trials" in line]
    assert len(lines) == 1 and "selection timings only" in lines[0]
    assert sorted(p.name for p in out_dir.iterdir()) == ["selection.csv", "selection.png"]


# -- record files between databases ------------------------------------------------------------------


def test_records_move_between_databases_as_a_file(tmp_path: Path, capsys) -> None:
    here, there, records = tmp_path / "here.db", tmp_path / "there.journal", tmp_path / "records.jsonl"
    with open_database(here) as database:
        database.add_workloads([_workload()])
        for tile, seconds in ((16, 2e-3), (32, 1e-3), (64, None)):
            claim = database.claim(KEY, {"tile": tile}, strategy="ga", budget=8, is_default=tile == 16)
            database.finish(claim, seconds=seconds, times=[seconds] if seconds else [], error=None if seconds else "x")
        database.confirm(KEY, {1: 1.2e-3})
        database.put_selection(Selection(KEY, {"tile": 32}, 2e-3, {"blas": CandidateTiming(0.9e-3)}))
        expected = database.records([KEY])[KEY]
    assert wpk_main(["tune", "--export-records", str(records), "--db", str(here)]) == 0
    assert "exported 1 workloads (3 finished trials, 1 confirmations, 1 selections)" in capsys.readouterr().out
    assert wpk_main(["tune", "--import-records", str(records), "--db", str(there)]) == 0
    assert "3 new trials (0 already there), 1 confirmations, 1 selections" in capsys.readouterr().out
    with open_database(there) as database:
        record = database.records([KEY])[KEY]
        assert database.selections([KEY])[KEY].candidates == {"blas": CandidateTiming(0.9e-3)}
    assert (record.config, record.seconds, record.confirmed, record.trials) == (
        expected.config, expected.seconds, True, 3)  # fmt: skip
    assert wpk_main(["tune", "--import-records", str(records), "--db", str(there)]) == 0
    assert "0 new trials (3 already there)" in capsys.readouterr().out
    (tmp_path / "bad.jsonl").write_text("not a record file\n")
    assert wpk_main(["tune", "--import-records", str(tmp_path / "bad.jsonl"), "--db", str(there)]) == 1
    _one_error_line(capsys.readouterr().err, "wpk tune", "not a Woodpecker tuning-record export")
