"""Build here, measure there: CUDA candidates claimed in the tuning database without a lease and
exported as batches, results (as `wpk measure` writes them) imported back by trial number (the
claims finished), next round proposed.

No GPU is needed: the results files are written by the test in the format of `wpk measure`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from woodpecker.cli.main import main as wpk_main
from woodpecker.database import COMPLETE, FAILED, RUNNING, open_database
from woodpecker.database.schema import config_key
from woodpecker.measure.batch import read_batch, write_results
from woodpecker.models import bundled_model_path
from woodpecker.tune.cuda_tuning import REFERENCE_ID, best_cuda_configs, export_round, import_results, model_cuda_tasks
from woodpecker.tune.tuner import TuneOptions


def _trials(db: str, key: str) -> list:
    with open_database(db) as database:
        return database.trials([key])[key]


@pytest.fixture(scope="module")
def conv_task():
    tasks = model_cuda_tasks(str(bundled_model_path()), "sm_90", kernels=["conv"])
    return tasks[0]


def _fake_measure(directory: Path, seconds: dict[int, float | str]) -> None:
    entries = []
    for candidate in read_batch(directory).candidates:
        value = seconds.get(candidate.id, 5e-5)
        entry = {"id": candidate.id, "config": candidate.config, "compile_seconds": 0.1, "verified": True}
        if isinstance(value, str):
            entry.update(times=[], error=value)
        else:
            entry.update(times=[value] * 3, error=None)
        entries.append(entry)
    write_results(directory, entries, {"name": "test GPU", "arch": "sm_90"})


def test_export_measure_import_rounds(conv_task, tmp_path: Path) -> None:
    task, space = conv_task
    db = str(tmp_path / "cuda.db")
    (first,) = export_round([(task, space)], TuneOptions(trials=3, strategy="ga", seed=0, storage=db), tmp_path / "r1",
                            "sm_90")
    batch = read_batch(first.directory)
    assert first.candidates == 3 and batch.reference == batch.candidates[0].id
    assert batch.candidates[0].config == space.default
    claims = _trials(db, task.key)
    assert [t.state for t in claims] == [RUNNING] * 3
    assert all(t.lease_expires is None for t in claims)  # measured elsewhere: the claims never expire
    assert [t.number for t in claims] == [c.id for c in batch.candidates]
    ids = [c.id for c in batch.candidates]
    _fake_measure(first.directory, {ids[0]: 4e-5, ids[1]: 1e-5, ids[2]: "CUDA_ERROR_ILLEGAL_ADDRESS"})
    (summary,) = import_results(tmp_path / "r1", db)
    assert (summary.imported, summary.failures, summary.waiting) == (2, 1, 0)
    assert import_results(tmp_path / "r1", db)[0].imported == 0  # idempotent
    with open_database(db) as database:
        record = database.records([task.key])[task.key]
    trials = _trials(db, task.key)
    assert record.default_seconds == pytest.approx(4e-5)
    assert min(t.seconds for t in trials if t.state == COMPLETE) == pytest.approx(1e-5)
    failed = [t for t in trials if t.state == FAILED]
    assert len(failed) == 1 and "ILLEGAL_ADDRESS" in failed[0].error

    (second,) = export_round([(task, space)], TuneOptions(trials=6, strategy="ga", seed=0, storage=db),
                             tmp_path / "r2", "sm_90")
    batch2 = read_batch(second.directory)
    assert second.candidates == 3 and batch2.reference == REFERENCE_ID
    assert batch2.candidates[0].id == REFERENCE_ID and batch2.candidates[0].config == space.default
    old = {config_key(c.config) for c in batch.candidates}
    new = [config_key(c.config) for c in batch2.candidates[1:]]
    assert len(set(new)) == 3 and old.isdisjoint(new)
    # Nothing more is exported while a round is waiting for its results.
    assert export_round([(task, space)], TuneOptions(trials=6, storage=db), tmp_path / "r3", "sm_90") == []
    _fake_measure(second.directory, {c.id: 2e-5 for c in batch2.candidates})
    assert import_results(tmp_path / "r2", db)[0].imported == 3
    configs = best_cuda_configs(db, [task])
    best = next(t.config for t in _trials(db, task.key) if t.seconds == pytest.approx(1e-5))
    assert configs == {name: best for name in task.model_kernels}


def test_cli_export_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "cli.db")
    out = tmp_path / "batches"
    assert wpk_main(["tune", "--target", "cuda", "--kernel", "pool", "--trials", "2", "--db", db,
                     "--export", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exported" in text and "wpk measure" in text
    for directory in sorted(p for p in out.iterdir() if p.is_dir()):
        _fake_measure(directory, {})
    assert wpk_main(["tune", "--import-results", str(out), "--db", db]) == 0
    text = capsys.readouterr().out
    assert "results" in text and "speedup" in text
    summary = json.loads(json.dumps([p.name for p in out.iterdir()]))
    assert summary


def test_import_into_the_wrong_storage(conv_task, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task, space = conv_task
    export_round([(task, space)], TuneOptions(trials=2, storage=str(tmp_path / "a.db")), tmp_path / "b", "sm_90")
    assert wpk_main(["tune", "--import-results", str(tmp_path / "b"), "--db", str(tmp_path / "other.db")]) == 2
    assert "has no workload" in capsys.readouterr().err


def test_compile_for_cuda_uses_the_records(conv_task, tmp_path: Path) -> None:
    import woodpecker
    from woodpecker.compiler import CompileOptions
    from woodpecker.gpu.space import knobs_from_config

    task, space = conv_task
    db = str(tmp_path / "rec.db")
    (batch,) = export_round([(task, space)], TuneOptions(trials=3, seed=1, storage=db), tmp_path / "r", "sm_90")
    ids = [c.id for c in read_batch(batch.directory).candidates]
    _fake_measure(batch.directory, {ids[0]: 3e-5, ids[1]: 4e-5, ids[2]: 1e-5})
    import_results(tmp_path / "r", db)
    best = read_batch(batch.directory).candidate(ids[2]).config
    tuned = woodpecker.compile(str(bundled_model_path()), target="cuda",
                               options=CompileOptions(target="cuda", tuning_db=db, libraries="none"))
    plain = woodpecker.compile(str(bundled_model_path()), options=CompileOptions(target="cuda",
                                                                              use_tuning_records=False))
    assert tuned.stats.tuned_kernels == len(task.model_kernels) and plain.stats.tuned_kernels == 0
    configs = {k.function: k for k in tuned.kernels}
    for name in task.model_kernels:
        kernel = configs[name]
        assert knobs_from_config(kernel.config, kernel.problem) == best
    # with the libraries, the heuristic gives the kernel to cuDNN; its fallback kernel keeps the record
    with_libraries = woodpecker.compile(str(bundled_model_path()), options=CompileOptions(target="cuda", tuning_db=db))
    assert with_libraries.stats.tuned_kernels == 0
    for name in task.model_kernels:
        step = next(s for s in with_libraries.plan.steps if s.name == name)
        main = next(k for k in step.kernels if k.entry == f"{name}_kernel")  # the launch the config is for
        assert step.impl == "cudnn" and step.how == "heuristic" and main.config == json.loads(json.dumps(best))
