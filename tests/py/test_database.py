"""The tuning database (woodpecker.database) on every backend: SQLite, journal, PostgreSQL.

PostgreSQL runs on a server this module starts on loopback (initdb/pg_ctl on PATH, as the
`postgres` user when we are root); without one those cases are skipped with the reason.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from database_support import SPACE, claim_worker, free_port, make_workload

from woodpecker.database import (
    COMPLETE,
    FAILED,
    FINISHED,
    RUNNING,
    CandidateTiming,
    Claim,
    ClaimLostError,
    DatabaseError,
    Selection,
    TuningDatabase,
    config_key,
    open_database,
)
from woodpecker.database.choice import choose_record
from woodpecker.database.liveness import this_host
from woodpecker.database.open import default_db_path, default_location, parse_location

BACKENDS = ("sqlite", "journal", "postgresql")
KEY = "cpu.conv.1x64x56x56.ab12cd34ef56"
OTHER = "cuda.matmul.256x1024x1024.0123456789ab"


@pytest.fixture(params=BACKENDS)
def new_url(request, tmp_path) -> Callable[[], str]:
    """Makes locations of fresh, empty databases of the backend."""
    count = iter(range(1000))
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres")  # started by the first test that needs it
        if isinstance(postgres, str):
            pytest.skip(postgres)
        return postgres.new_database
    suffix = ".db" if request.param == "sqlite" else ".journal"
    return lambda: str(tmp_path / f"db{next(count)}{suffix}")


@pytest.fixture
def db(new_url) -> Iterator[TuningDatabase]:
    with open_database(new_url()) as database:
        database.add_workloads([make_workload(KEY), make_workload(OTHER, target="cuda", device="sm_90")])
        yield database


def _one_line_error(excinfo: pytest.ExceptionInfo, *words: str) -> str:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, DatabaseError)
    assert "\n" not in message, message
    assert excinfo.value.__cause__ is None  # raised `from None`: no chained traceback
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


# -- workloads ------------------------------------------------------------------------------------


def test_workloads_upsert_is_idempotent_and_updates_changes(db):
    assert db.keys() == sorted([KEY, OTHER])
    assert db.keys(target="cuda") == [OTHER]
    assert db.keys(prefix="cpu.") == [KEY]
    assert db.keys(prefix="cpu_") == []  # LIKE wildcards are escaped
    stored = db.workloads([KEY, "missing"])
    assert list(stored) == [KEY]
    assert stored[KEY] == make_workload(KEY)
    assert stored[KEY].arg_shapes == ((1, 64, 56, 56), (64, 64, 3, 3), (64,))
    claim = db.claim(KEY, {"tile": 8}, strategy="default", budget=4, is_default=True)
    db.finish(claim, seconds=1.0)
    db.add_workloads([make_workload(KEY)])  # again: nothing changes, the trial stays
    db.add_workloads([make_workload(KEY, description="changed")])
    assert db.workloads([KEY])[KEY].description == "changed"
    assert [t.number for t in db.trials([KEY])[KEY]] == [0]
    assert db.claim(KEY, {"tile": 16}, strategy="ga", budget=4).number == 1  # counters kept


def test_claim_of_unknown_workload_is_an_error(db):
    with pytest.raises(DatabaseError) as excinfo:
        db.claim("cpu.none", {"a": 1}, strategy="ga", budget=3)
    _one_line_error(excinfo, "cpu.none", "add_workloads")


# -- claims ---------------------------------------------------------------------------------------


def test_claim_refuses_a_configuration_with_a_trial_and_a_full_budget(db):
    first = db.claim(KEY, {"tile": 8, "vec": (4, 1)}, strategy="default", budget=3, is_default=True)
    assert first is not None and first.number == 0 and first.is_default
    assert first.config == {"tile": 8, "vec": (4, 1)}
    # The same configuration, keys in another order and the tuple as a list: the same trial.
    assert db.claim(KEY, {"vec": [4, 1], "tile": 8}, strategy="ga", budget=3) is None
    assert db.claim(OTHER, {"tile": 8, "vec": (4, 1)}, strategy="ga", budget=3) is not None  # other workload
    db.finish(first, seconds=1.0)
    assert db.claim(KEY, {"tile": 8, "vec": (4, 1)}, strategy="ga", budget=3) is None  # complete
    failing = db.claim(KEY, {"tile": 16}, strategy="ga", budget=3)
    db.finish(failing, seconds=None, error="crash")
    assert db.claim(KEY, {"tile": 16}, strategy="ga", budget=3) is None  # failed
    running = db.claim(KEY, {"tile": 32}, strategy="ga", budget=3)
    assert running is not None and running.number == 2
    # complete + failed + running = 3 = the budget
    assert db.claim(KEY, {"tile": 64}, strategy="ga", budget=3) is None
    assert db.claim(KEY, {"tile": 64}, strategy="ga", budget=4) is not None
    counts = db.counts([KEY, "missing"])
    assert list(counts) == [KEY]
    assert (counts[KEY].running, counts[KEY].complete, counts[KEY].failed) == (2, 1, 1)
    with pytest.raises(ValueError):
        db.claim(KEY, {"tile": 1}, strategy="ga", budget=0)


def test_finish_records_complete_and_failed_trials(db):
    claim = db.claim(KEY, {"tile": 8}, strategy="tpe", budget=5, worker="gpu-host:77")
    trial = db.finish(claim, seconds=0.5, times=[0.5, 0.6], relative=0.8, compile_seconds=1.25)
    assert (trial.state, trial.seconds, trial.times, trial.relative, trial.compile_seconds) == (
        COMPLETE,
        0.5,
        (0.5, 0.6),
        0.8,
        1.25,
    )
    assert trial.worker == "gpu-host:77" and trial.strategy == "tpe" and trial.seq == 1
    assert trial.finished_at >= trial.claimed_at > 0
    failed = db.finish(db.claim(KEY, {"tile": 16}, strategy="tpe", budget=5), seconds=0.1, error="x" * 5000)
    assert failed.state == FAILED and failed.seconds is None and len(failed.error) == 2000 and failed.seq == 2
    no_time = db.finish(db.claim(KEY, {"tile": 32}, strategy="tpe", budget=5), seconds=float("inf"))
    assert no_time.state == FAILED and no_time.error
    stored = {t.number: t for t in db.trials([KEY])[KEY]}
    assert stored[0] == trial and stored[1] == failed and stored[2] == no_time
    assert stored[0].config == {"tile": 8}


def test_release_removes_the_claim_and_never_reuses_its_number(db):
    claim = db.claim(KEY, {"tile": 8}, strategy="ga", budget=1)
    assert db.claim(KEY, {"tile": 16}, strategy="ga", budget=1) is None
    db.release(claim)
    assert db.trials([KEY]) == {}
    again = db.claim(KEY, {"tile": 8}, strategy="ga", budget=1)
    assert again is not None and again.number == 1
    db.release(claim)  # a stale release does not touch the new claim
    assert [t.number for t in db.trials([KEY], states=[RUNNING])[KEY]] == [1]


def test_trials_are_batched_and_filtered_by_state_and_cursor(db):
    for number, key in enumerate([KEY, KEY, OTHER, KEY]):
        claim = db.claim(key, {"tile": number}, strategy="ga", budget=10)
        db.finish(claim, seconds=None if number == 1 else 1.0 + number)
    running = db.claim(KEY, {"tile": 99}, strategy="ga", budget=10)
    found = db.trials([KEY, OTHER, "missing"])
    assert sorted(found) == [KEY, OTHER]
    assert [t.state for t in found[KEY]] == [COMPLETE, FAILED, COMPLETE, RUNNING]
    assert [t.state for t in db.trials([KEY], states=FINISHED)[KEY]] == [COMPLETE, FAILED, COMPLETE]
    assert [t.number for t in db.trials([KEY], states=[FAILED])[KEY]] == [1]
    # since: finished after the cursor only (running ones have no seq yet)
    assert [t.seq for t in db.trials([KEY], since=1)[KEY]] == [2, 3]
    assert [t.seq for t in db.trials([KEY, OTHER], since={KEY: 2, OTHER: 0})[KEY]] == [3]
    assert [t.seq for t in db.trials([KEY, OTHER], since={KEY: 2, OTHER: 0})[OTHER]] == [1]
    assert db.trials([KEY], since=3) == {}
    db.finish(running, seconds=2.0)
    assert [(t.number, t.seq) for t in db.trials([KEY], since=3)[KEY]] == [(3, 4)]


# -- records and confirmations --------------------------------------------------------------------


def _finished(db, key, config, seconds, **kwargs):
    claim = db.claim(key, config, strategy=kwargs.pop("strategy", "ga"), budget=100, **kwargs)
    return db.finish(claim, seconds=seconds, error=None if seconds is not None else "failed")


def test_record_is_the_lowest_complete_trial_until_confirmed(db):
    assert db.records([KEY]) == {}
    _finished(db, KEY, {"tile": 0}, None)
    assert db.records([KEY]) == {}  # failed trials are never chosen
    default = _finished(db, KEY, {"tile": 1}, 2.0, is_default=True, strategy="default")
    fast = _finished(db, KEY, {"tile": 2}, 1.0)
    middle = _finished(db, KEY, {"tile": 3}, 1.5, strategy="tpe")
    record = db.records([KEY, OTHER, "missing"])
    assert list(record) == [KEY]
    record = record[KEY]
    assert (record.number, record.seconds, record.confirmed, record.config) == (fast.number, 1.0, False, {"tile": 2})
    assert (record.default_number, record.default_seconds) == (default.number, 2.0)
    assert (record.trials, record.failures) == (4, 1)
    assert record.speedup == pytest.approx(2.0)
    # The fast one was lucky: confirmed slower than the middle one's confirmation.
    db.confirm(KEY, {fast.number: 1.8, middle.number: 1.6, default.number: 2.4})
    record = db.records([KEY])[KEY]
    assert (record.number, record.seconds, record.confirmed, record.strategy) == (middle.number, 1.6, True, "tpe")
    assert record.default_seconds == 2.4
    # A confirmed time beats a lower unconfirmed one.
    _finished(db, KEY, {"tile": 4}, 0.5)
    assert db.records([KEY])[KEY].number == middle.number


def test_failed_confirmation_is_not_chosen(db):
    first = _finished(db, KEY, {"tile": 1}, 1.0)
    second = _finished(db, KEY, {"tile": 2}, 1.2)
    db.confirm(KEY, {first.number: None})  # its re-measurement failed
    assert db.records([KEY])[KEY].number == second.number
    db.confirm(KEY, {second.number: float("inf")})
    assert db.records([KEY])[KEY].number == first.number  # every one failed: the lowest value


def test_confirmations_merge_and_keep_the_lower_time(db):
    trials = [_finished(db, KEY, {"tile": n}, 1.0 + n) for n in range(3)]
    db.confirm(KEY, {trials[0].number: 1.5})
    db.confirm(KEY, {trials[1].number: 1.9, trials[0].number: 1.7})  # another worker's
    db.confirm(KEY, {trials[2].number: None})
    assert db.confirmations([KEY, OTHER]) == {KEY: {0: 1.5, 1: 1.9, 2: None}}
    db.confirm(KEY, {2: 2.5})
    assert db.confirmations([KEY])[KEY][2] == 2.5


def test_records_of_sixty_keys_are_one_batched_read(new_url):
    with open_database(new_url()) as db:
        keys = [f"cpu.k{i:02d}.0123456789ab" for i in range(60)]
        db.add_workloads([make_workload(key) for key in keys])
        for key in keys:
            _finished(db, key, {"tile": 1}, 1.0, is_default=True)
            _finished(db, key, {"tile": 2}, 0.5)
        start = time.perf_counter()
        records = db.records(keys)
        elapsed = time.perf_counter() - start
    assert len(records) == 60 and all(r.number == 1 for r in records.values())
    assert elapsed < 0.5, f"records of 60 keys took {elapsed * 1000:.1f} ms"


def test_materialized_records_match_the_rule_over_all_trials(new_url):
    """The SQL backend keeps records from a few candidate trials: after every write it must agree
    with choose_record over every trial, through random finishes, failures and confirmations."""
    rng = random.Random(7)
    with open_database(new_url()) as db:
        keys = [f"cpu.r{i}.0123456789ab" for i in range(4)]
        db.add_workloads([make_workload(key) for key in keys])
        fallbacks = 0  # steps where only failed confirmations exist: the lowest value is skipped
        for step in range(160):
            key = rng.choice(keys)
            if rng.random() < 0.25:
                # like the confirmation step: re-measure the lowest few; many re-measurements fail
                complete = sorted(db.trials([key], states=[COMPLETE]).get(key, []), key=lambda t: t.seconds)
                picks = [t.number for t in complete[: rng.randint(1, 3)]]
                db.confirm(key, {n: None if rng.random() < 0.8 else rng.uniform(0.5, 2.0) for n in picks})
            else:
                seconds = None if rng.random() < 0.2 else rng.choice([1.0, rng.uniform(0.5, 2.0)])
                _finished(db, key, {"step": step}, seconds, is_default=rng.random() < 0.15)
            confirmations = db.confirmations([key]).get(key, {})
            fallbacks += bool(confirmations) and all(v is None for v in confirmations.values())
            expected = choose_record(key, db.trials([key]).get(key, []), confirmations)
            assert db.records([key]).get(key) == expected, f"step {step}"
            if rng.random() < 0.03:  # start the workload over with fresh confirmations
                key = f"cpu.r{len(keys)}.0123456789ab"
                keys.append(key)
                db.add_workloads([make_workload(key)])
        assert fallbacks > 10  # the hard case was exercised


# -- selections -----------------------------------------------------------------------------------


def test_selections_are_stored_replaced_and_batched(db):
    selection = Selection(
        KEY,
        generated_config={"tile": 8, "vec": (4, 1)},
        default_seconds=0.002,
        candidates={"onednn": CandidateTiming(seconds=0.001), "blas": CandidateTiming(error="wrong output")},
    )
    db.put_selection(selection)
    stored = db.selections([KEY, OTHER])
    assert list(stored) == [KEY]
    assert stored[KEY].updated_at > 0
    assert replace(stored[KEY], updated_at=0.0) == selection
    db.put_selection(replace(selection, candidates={"onednn": CandidateTiming(seconds=0.003)}, updated_at=0.0))
    assert set(db.selections([KEY])[KEY].candidates) == {"onednn"}


# -- export and import ----------------------------------------------------------------------------


def _fill(db):
    default = _finished(db, KEY, {"tile": 8, "vec": (4, 1)}, 2.0, is_default=True, strategy="default")
    fast = _finished(db, KEY, {"tile": 16}, 1.0)
    _finished(db, KEY, {"tile": 32}, None)
    db.claim(KEY, {"tile": 64}, strategy="ga", budget=100)  # running: not exported
    db.confirm(KEY, {default.number: 2.1, fast.number: 1.1})
    db.put_selection(Selection(KEY, {"tile": 16}, 2.1, {"onednn": CandidateTiming(0.9)}, updated_at=100.0))


@pytest.mark.parametrize("into", ["sqlite", "journal"])
def test_export_import_round_trip(db, tmp_path, into):
    _fill(db)
    path = tmp_path / "records.jsonl"
    summary = db.export(path)
    assert (summary.workloads, summary.trials, summary.confirmations, summary.selections) == (2, 3, 2, 1)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["format"] == "woodpecker-tuning-records" and lines[0]["version"] == 1
    assert sorted({line.get("type") for line in lines[1:]}) == ["confirmation", "selection", "trial", "workload"]
    target = tmp_path / ("copy.db" if into == "sqlite" else "copy.journal")
    with open_database(target) as copy:
        imported = copy.import_file(path)
        assert (imported.workloads, imported.trials, imported.duplicates, imported.confirmations) == (2, 3, 0, 2)
        assert copy.workloads([KEY, OTHER]) == db.workloads([KEY, OTHER])
        assert copy.records([KEY]) == db.records([KEY])
        assert copy.selections([KEY]) == db.selections([KEY])
        assert copy.confirmations([KEY]) == db.confirmations([KEY])
        strip = lambda trials: [(t.number, t.config, t.state, t.seconds, t.times, t.error) for t in trials]  # noqa: E731
        assert strip(copy.trials([KEY])[KEY]) == strip(db.trials([KEY], states=FINISHED)[KEY])
        again = copy.import_file(path)  # a second import changes nothing
        assert (again.trials, again.duplicates, again.confirmations, again.selections) == (0, 3, 0, 0)
        assert len(copy.trials([KEY])[KEY]) == 3


def test_import_merges_by_configuration(db, tmp_path):
    _fill(db)
    path = tmp_path / "records.jsonl"
    db.export(path, keys=[KEY])
    with open_database(tmp_path / "other.db") as other:
        other.add_workloads([make_workload(KEY)])
        own = _finished(other, KEY, {"tile": 16}, 1.05)  # the same configuration measured here
        _finished(other, KEY, {"tile": 128}, 0.7)
        waiting = other.claim(KEY, {"tile": 8, "vec": (4, 1)}, strategy="default", budget=100, lease_s=None)
        other.put_selection(Selection(KEY, {}, 1.0, {}, updated_at=200.0))  # newer than the file's
        summary = other.import_file(path)
        assert (summary.trials, summary.duplicates) == (2, 1)  # tile 8 (finishing the waiting claim), tile 32
        trials = {config_key(t.config): t for t in other.trials([KEY])[KEY]}
        assert len(trials) == 4
        same = trials[config_key({"tile": 16})]
        assert (same.number, same.seconds) == (own.number, 1.05)  # this database's measurement stays
        default = trials[config_key({"tile": 8, "vec": (4, 1)})]
        assert (default.number, default.state, default.seconds) == (waiting.number, COMPLETE, 2.0)
        # confirmations follow the configurations to this database's trial numbers
        assert other.confirmations([KEY])[KEY] == {waiting.number: 2.1, own.number: 1.1}
        assert other.records([KEY])[KEY].number == own.number
        assert other.selections([KEY])[KEY].updated_at == 200.0
        with pytest.raises(ClaimLostError):
            other.finish(waiting, seconds=3.0)  # the import finished it already


def test_import_refuses_bad_files(db, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "woodpecker-tuning-records", "version": 99}\n')
    with pytest.raises(DatabaseError) as excinfo:
        db.import_file(bad)
    _one_line_error(excinfo, str(bad), "newer", "upgrade")
    bad.write_text('{"format": "woodpecker-tuning-records", "version": 1}\n{"type": "trial"\n')
    with pytest.raises(DatabaseError) as excinfo:
        db.import_file(bad)
    _one_line_error(excinfo, "line 2")
    bad.write_text("hello\n")
    with pytest.raises(DatabaseError) as excinfo:
        db.import_file(bad)
    _one_line_error(excinfo, "not a Woodpecker tuning-record export")
    with pytest.raises(DatabaseError) as excinfo:
        db.import_file(tmp_path / "missing.jsonl")
    _one_line_error(excinfo, "missing.jsonl")


# -- expiry ---------------------------------------------------------------------------------------


def _claim_and_die(location: str, key: str) -> None:
    with open_database(location) as db:
        assert db.claim(key, {"tile": 8}, strategy="ga", budget=2) is not None
        assert db.claim(key, {"tile": 16}, strategy="ga", budget=2, lease_s=None) is not None
    os._exit(0)  # killed: no finish, no release


def test_claims_of_a_dead_worker_expire_unless_leaseless(new_url):
    location = new_url()
    with open_database(location) as db:
        db.add_workloads([make_workload(KEY)])
        process = multiprocessing.get_context("spawn").Process(target=_claim_and_die, args=(location, KEY))
        process.start()
        process.join(60)
        assert process.exitcode == 0
        # tile 8's worker is gone: reclaimable, and not counted; tile 16 has no lease: held forever.
        assert db.counts([KEY])[KEY].running == 1
        assert [t.config for t in db.trials([KEY])[KEY]] == [{"tile": 16}]
        assert db.claim(KEY, {"tile": 16}, strategy="ga", budget=3) is None
        claim = db.claim(KEY, {"tile": 8}, strategy="ga", budget=2)
        assert claim is not None and claim.number == 2
        assert db.claim(KEY, {"tile": 32}, strategy="ga", budget=2) is None  # budget 2: tile 8 + tile 16


def test_lease_expiry_and_finishing_a_lost_claim(db):
    host = this_host()
    slow = db.claim(KEY, {"tile": 8}, strategy="ga", budget=2, lease_s=0.05)
    late = db.claim(KEY, {"tile": 16}, strategy="ga", budget=2, lease_s=0.05)
    time.sleep(0.1)
    assert db.counts([KEY])[KEY].running == 0 and db.trials([KEY]) == {}
    # An expired claim not taken over yet still finishes.
    assert db.finish(late, seconds=1.0).number == late.number
    # Taken over: another worker claims tile 8 after the lease passed.
    taker = db.claim(KEY, {"tile": 8}, strategy="ga", budget=2, worker=f"{host}:{os.getpid()}")
    assert taker is not None and taker.number == 2
    with pytest.raises(ClaimLostError) as excinfo:
        db.finish(slow, seconds=0.5)
    _one_line_error(excinfo, KEY, "lease")
    db.release(taker)
    # Its configuration is free again and the budget allows: the lost claim's result is kept.
    kept = db.finish(slow, seconds=0.5)
    assert kept.state == COMPLETE and kept.number == 3 and kept.config == {"tile": 8}
    assert db.counts([KEY])[KEY].complete == 2


def test_a_leaseless_claim_is_finished_from_another_process(new_url):
    location = new_url()
    with open_database(location) as db:
        db.add_workloads([make_workload(KEY)])
        exported = db.claim(KEY, {"tile": 8}, strategy="ga", budget=4, lease_s=None)
    with open_database(location) as db:  # later, once the results came back
        (running,) = db.trials([KEY], states=[RUNNING])[KEY]
        claim = Claim.of_trial(running, budget=4)
        assert claim == replace(exported, budget=4)
        assert db.finish(claim, seconds=0.25).state == COMPLETE
        with pytest.raises(ValueError):
            Claim.of_trial(db.trials([KEY])[KEY][0], budget=4)


def test_threads_sharing_one_database_object(new_url):
    location = new_url()
    budget = 20
    with open_database(location) as db:
        db.add_workloads([make_workload(KEY)])
        finished: list[tuple[int, str]] = []

        def work(seed: int) -> None:
            rng = random.Random(seed)
            while db.counts([KEY])[KEY].finished < budget:
                claim = db.claim(KEY, rng.choice(SPACE), strategy="random", budget=budget)
                if claim is not None:
                    trial = db.finish(claim, seconds=0.001)
                    finished.append((trial.number, trial.config_key))

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(work, range(4)))
        stored = db.trials([KEY])[KEY]
    assert sorted(finished) == sorted((t.number, t.config_key) for t in stored)
    assert len(stored) == budget == len({t.config_key for t in stored})


def test_a_journal_replaced_by_a_shorter_copy_is_replayed_again(tmp_path):
    path = tmp_path / "t.journal"
    with open_database(path) as db:
        db.add_workloads([make_workload(KEY)])
        _finished(db, KEY, {"tile": 8}, 1.0)
        backup = path.read_bytes()
        _finished(db, KEY, {"tile": 16}, 0.5)
        assert db.records([KEY])[KEY].seconds == 0.5
        path.write_bytes(backup)  # the user restored the backup
        assert db.records([KEY])[KEY].seconds == 1.0
        assert db.claim(KEY, {"tile": 16}, strategy="ga", budget=5) is not None


def test_a_claim_of_a_worker_on_another_host_is_not_checked(db):
    db.claim(KEY, {"tile": 8}, strategy="ga", budget=5, worker="elsewhere:1")
    assert db.claim(KEY, {"tile": 8}, strategy="ga", budget=5) is None


# -- concurrency ----------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [2, 4])
def test_concurrent_workers_share_a_budget(new_url, workers):
    location = new_url()
    budget = 6 * workers
    with open_database(location) as db:
        db.add_workloads([make_workload(KEY)])
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    results = context.Queue()
    processes = [
        context.Process(target=claim_worker, args=(location, KEY, budget, seed, barrier, results))
        for seed in range(workers)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=90) for _ in processes]
    for process in processes:
        process.join(30)
    errors = [error for report in reports for error in report["errors"]]
    assert not errors, errors[0]
    finished = [entry for report in reports for entry in report["finished"]]
    assert sum(report["refused"] for report in reports) > 0  # the workers did compete
    with open_database(location) as db:
        stored = db.trials([KEY])[KEY]
        counts = db.counts([KEY])[KEY]
        confirmed = db.confirmations([KEY]).get(KEY, {})
        record = db.records([KEY]).get(KEY)
    assert len(stored) == budget and counts.finished == budget and counts.running == 0  # exactly the budget
    assert len({t.config_key for t in stored}) == budget  # no configuration measured twice
    assert len(finished) == budget  # every finish a worker got back is stored, none lost
    assert sorted((n, c, s) for n, c, s, _ in finished) == sorted((t.number, t.config_key, t.state) for t in stored)
    complete = {n: s for n, _, state, s in finished if state == COMPLETE}
    assert confirmed == pytest.approx({n: s * 0.9 for n, s in complete.items()})  # every worker's confirmations
    if complete:
        assert record is not None and record.number == min(complete, key=complete.get)


# -- opening and errors ---------------------------------------------------------------------------


def test_locations_and_default_path(tmp_path, monkeypatch):
    monkeypatch.delenv("WOODPECKER_TUNING_DB", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_db_path() == tmp_path / "cache" / "woodpecker" / "tuning.db"
    monkeypatch.setenv("WOODPECKER_TUNING_DB", str(tmp_path / "x.journal"))
    assert default_location() == str(tmp_path / "x.journal")
    assert parse_location(None).kind == "journal"
    assert parse_location("sqlite:////abs/t.db").path == Path("/abs/t.db")
    assert parse_location("sqlite:///rel/t.db").path == Path("rel/t.db")
    assert parse_location("journal:////abs/t.log").kind == "journal"
    assert parse_location("postgres://u@h/db").url == "postgresql+psycopg2://u@h/db"
    assert parse_location(tmp_path / "t.db").kind == "sqlite"
    with open_database() as db:  # the default, created with its folders
        db.add_workloads([make_workload(KEY)])
    assert (tmp_path / "x.journal").exists()


def test_an_old_optuna_file_at_the_path_coexists(tmp_path):
    import optuna

    path = tmp_path / "tuning.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="old", storage=f"sqlite:///{path}")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    with open_database(path) as db:
        db.add_workloads([make_workload(KEY)])
        _finished(db, KEY, {"tile": 8}, 1.0)
        assert db.records([KEY])[KEY].seconds == 1.0
    assert len(optuna.load_study(study_name="old", storage=f"sqlite:///{path}").trials) == 2


@pytest.mark.parametrize("scheme", ["foo://x", "redis://localhost:6379/0", "mysql://u@h/db", "sqlite://", ""])
def test_unknown_schemes_are_refused(scheme, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabaseError) as excinfo:
        open_database(scheme)
    _one_line_error(excinfo)
    assert list(tmp_path.iterdir()) == []  # never silently a local file


def test_a_directory_is_refused(tmp_path):
    for name in ("dir.db", "dir.journal"):
        (tmp_path / name).mkdir()
        with pytest.raises(DatabaseError) as excinfo:
            open_database(tmp_path / name)
        _one_line_error(excinfo, name, "is a directory", "file path")


def test_a_path_under_a_regular_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    for name in ("file/sub/t.db", "file/t.journal"):
        with pytest.raises(DatabaseError) as excinfo:
            open_database(tmp_path / name)
        _one_line_error(excinfo, str(tmp_path / "file"), "not a directory")


def test_files_that_are_no_database_are_refused(tmp_path):
    cases = {
        "text.db": ("hello world\n", "not an SQLite database"),
        "journal.db": ('{"format": "woodpecker-tuning-journal", "version": 1}\n', ".journal"),
        "text.journal": ("hello world\n", "not a Woodpecker tuning journal"),
        "optuna.journal": ('{"op_code": 0, "worker_id": "x", "study_name": "s"}\n', "Optuna journal"),
    }
    for name, (content, words) in cases.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(DatabaseError) as excinfo:
            open_database(tmp_path / name)
        _one_line_error(excinfo, name, words)
        assert (tmp_path / name).read_text() == content  # left alone
    sqlite3.connect(tmp_path / "real.db").execute("CREATE TABLE t (x)").connection.close()
    (tmp_path / "real.journal").write_bytes((tmp_path / "real.db").read_bytes())
    with pytest.raises(DatabaseError) as excinfo:
        open_database(tmp_path / "real.journal")
    _one_line_error(excinfo, "is an SQLite database, not a journal")
    assert (tmp_path / "real.journal").read_bytes() == (tmp_path / "real.db").read_bytes()  # left alone


def test_corrupt_journal_lines(tmp_path):
    path = tmp_path / "t.journal"
    with open_database(path) as db:
        db.add_workloads([make_workload(KEY)])
        _finished(db, KEY, {"tile": 8}, 1.0)
    good = path.read_bytes()
    # A last line cut short (its writer died mid-write) is ignored, then truncated by the next writer.
    path.write_bytes(good + b'{"ops": [{"op": "del')
    with open_database(path) as db:
        assert db.records([KEY])[KEY].seconds == 1.0
        _finished(db, KEY, {"tile": 16}, 0.5)
    with open_database(path) as db:
        assert db.records([KEY])[KEY].seconds == 0.5
    assert b'"op": "del' not in path.read_bytes()
    # Anything else that is no transaction is refused, with its line number.
    lines = path.read_bytes().splitlines(keepends=True)
    for garbage in (b"not json\n", b'{"ops": [{"op": "explode"}]}\n', b'{"ops": [{"op": "delete", "key": "x"}]}\n'):
        path.write_bytes(lines[0] + lines[1] + garbage + b"".join(lines[2:]))
        with pytest.raises(DatabaseError) as excinfo:
            open_database(path)
        _one_line_error(excinfo, str(path), "line 3", "restore")


def test_a_newer_schema_is_refused(new_url, request):
    location = new_url()
    open_database(location).close()
    if location.endswith(".journal"):
        Path(location).write_text('{"format": "woodpecker-tuning-journal", "version": 99}\n')
    elif location.endswith(".db"):
        with sqlite3.connect(location) as conn:
            conn.execute("UPDATE wpk_meta SET value = '99' WHERE name = 'schema_version'")
        conn.close()
    else:
        request.getfixturevalue("postgres").execute(
            location, "UPDATE wpk_meta SET value = '99' WHERE name = 'schema_version'"
        )
    with pytest.raises(DatabaseError) as excinfo:
        open_database(location)
    _one_line_error(excinfo, "newer Woodpecker", "schema 99", "upgrade")


def test_postgresql_without_psycopg2(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(DatabaseError) as excinfo:
        open_database("postgresql://wpk:secret@127.0.0.1:5432/tuning")
    message = _one_line_error(excinfo, "pip install 'woodpecker[postgres]'", "127.0.0.1")
    assert "secret" not in message


def test_postgresql_server_refusing_the_connection():
    pytest.importorskip("psycopg2")
    url = f"postgresql://wpk:secret@127.0.0.1:{free_port()}/tuning"
    with pytest.raises(DatabaseError) as excinfo:
        open_database(url)
    message = _one_line_error(excinfo, "cannot connect to PostgreSQL", "start the server")
    assert "secret" not in message


@pytest.fixture
def read_only_mount(tmp_path) -> Iterator[Path]:
    """A tmpfs mounted read-only, with an SQLite database and a journal made before."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        for name in ("t.db", "t.journal"):
            with open_database(mount / name) as db:
                db.add_workloads([make_workload(KEY)])
                _finished(db, KEY, {"tile": 8}, 1.0)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_read_only_file_system(read_only_mount):
    for name in ("t.db", "t.journal"):
        with open_database(read_only_mount / name) as db:
            assert db.records([KEY])[KEY].seconds == 1.0  # reads work
            with pytest.raises(DatabaseError) as excinfo:
                db.claim(KEY, {"tile": 16}, strategy="ga", budget=5)
            _one_line_error(excinfo, name, "read-only file system", "writable --db")
        with pytest.raises(DatabaseError) as excinfo:
            open_database(read_only_mount / "sub" / f"new{Path(name).suffix}")
        _one_line_error(excinfo, "cannot create", "read-only file system")
