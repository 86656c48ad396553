"""Several `wpk tune` processes on one tuning database (SQLite, journal, PostgreSQL) divide the
work: every workload ends with exactly `--trials` finished trials, no configuration is measured
twice, no worker fails, and together they take less time than one process doing all of it.

The workers are the real command line (`tests/py/tune_worker.py`) with a runner that sleeps a
fixed time per measurement, so the expected speedup is set by the work, not by the machine:
one process needs at least (trials x kernels x sleep) seconds; the tuning span (the first
claim to the last finish, from the database's timestamps) of N workers must come close to 1/N
of that. Process start-up (importing, cutting the model) is the same for every worker and runs
in parallel; it is reported, not asserted on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from woodpecker.database import COMPLETE, RUNNING, open_database
from woodpecker.models import bundled_model_path

TESTS = Path(__file__).resolve().parent
KERNELS = ("k0_conv", "k2_conv")  # the bundled tiny ResNet's two largest search spaces
TRIALS = 8
SLEEP_S = 0.25
WORK_S = len(KERNELS) * TRIALS * SLEEP_S  # what one process spends measuring, at least


def _location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        server = request.getfixturevalue("postgres")
        if isinstance(server, str):
            pytest.skip(server)
        return server.new_database()
    return str(tmp_path / ("tuning.db" if backend == "sqlite" else "tuning.journal"))


def run_workers(db: str, workers: int, tmp_path: Path, strategy: str = "ga") -> dict:
    """Starts `workers` tuning processes on `db` together; waits for them; what they did."""
    args = ["tune", str(bundled_model_path()), "--db", db, "--trials", str(TRIALS), "--strategy", strategy,
            "--in-process", "--no-progress", "--confirm", "0", "--no-end-to-end"]  # fmt: skip
    for kernel in KERNELS:
        args += ["--kernel", kernel]
    barrier = tmp_path / f"barrier-{workers}"
    start = time.monotonic()
    processes = []
    for index in range(workers):
        log = tmp_path / f"calls-{workers}-{index}.json"
        command = [sys.executable, str(TESTS / "tune_worker.py"), str(SLEEP_S), str(barrier), str(workers), str(log),
                   "--", *args, "--seed", str(index)]  # fmt: skip
        processes.append((subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), log))
    try:
        outputs = [process.communicate(timeout=120)[0] for process, _ in processes]
    finally:
        for process, _ in processes:  # a worker that never stops fails the test, and is stopped
            if process.poll() is None:
                process.kill()
                process.wait()
    wall = time.monotonic() - start
    with open_database(db) as database:
        keys = database.keys()
        trials = database.trials(keys)
    calls = [json.loads(log.read_text()) if log.exists() else None for _, log in processes]
    return {
        "codes": [process.returncode for process, _ in processes],
        "outputs": outputs,
        "calls": calls,
        "trials": trials,
        "wall": wall,
    }


def _span(trials: dict) -> float:
    """First claim to last finish of every trial, from the database's timestamps."""
    every = [t for ts in trials.values() for t in ts]
    return max(t.finished_at for t in every) - min(t.claimed_at for t in every)


def _check_shared_work(done: dict, workers: int) -> None:
    assert done["codes"] == [0] * workers, done["outputs"]
    for output in done["outputs"]:
        assert "Traceback" not in output and "error" not in output.lower() and "database is locked" not in output
    assert all(calls is not None for calls in done["calls"]), done["outputs"]
    trials = done["trials"]
    assert len(trials) == len(KERNELS)
    for ts in trials.values():  # exactly the budget, all finished, one default, no configuration twice
        assert len(ts) == TRIALS and all(t.state == COMPLETE for t in ts)
        assert sum(t.is_default for t in ts) == 1
        assert len({t.config_key for t in ts}) == TRIALS
    measured = [(key, ckey) for calls in done["calls"] for key, ckey, _ in calls]
    assert len(measured) == len(set(measured)) == len(KERNELS) * TRIALS  # each measured once, each kept
    assert set(measured) == {(t.key, t.config_key) for ts in trials.values() for t in ts}
    assert all(calls for calls in done["calls"])  # every worker took a share


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The baseline: one process doing all the work (SQLite)."""
    tmp = tmp_path_factory.mktemp("one")
    done = run_workers(str(tmp / "tuning.db"), 1, tmp)
    _check_shared_work(done, 1)
    return done


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("backend", ["sqlite", "journal", "postgresql"])
def test_workers_divide_the_budget(backend: str, workers: int, one_process: dict, tmp_path: Path,
                                   request: pytest.FixtureRequest) -> None:  # fmt: skip
    db = _location(backend, tmp_path, request)
    done = run_workers(db, workers, tmp_path)
    _check_shared_work(done, workers)
    single, span = _span(one_process["trials"]), _span(done["trials"])
    print(f"\n{backend}, {workers} workers: tuning span {span:.2f} s (one process {single:.2f} s, work "
          f"{WORK_S:.2f} s); wall {done['wall']:.2f} s (one process {one_process['wall']:.2f} s); measured per "
          f"worker {[len(c) for c in done['calls']]}")  # fmt: skip
    assert single >= WORK_S
    assert span < WORK_S * (1 / workers + 0.25), (span, single)
    assert span < single


def test_no_running_claims_are_left(one_process: dict) -> None:
    assert all(t.state != RUNNING for ts in one_process["trials"].values() for t in ts)
    assert Counter(t.strategy for ts in one_process["trials"].values() for t in ts) == {
        "default": len(KERNELS),
        "ga": len(KERNELS) * (TRIALS - 1),
    }
