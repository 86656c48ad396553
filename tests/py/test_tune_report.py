"""The tuning report: summaries, convergence curves, CSV files, plots and `wpk tune-report`,
read from a tuning database (woodpecker.database) built here claim by claim."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from woodpecker.cli.tune_report import main
from woodpecker.database import TuningDatabase, Workload, open_database
from woodpecker.tune import report
from woodpecker.tune.report import (
    SUMMARY_COLUMNS,
    TRIAL_COLUMNS,
    KernelSummary,
    best_so_far,
    format_table,
    plot_speedups,
    summarize,
    write_csv,
    write_report,
    write_trials_csv,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MATMUL_FLOPS = 2 * 256 * 256 * 256


def _workload(key: str, description: str, template: str, flops: int) -> Workload:
    return Workload(
        key=key,
        target="cpu",
        device="test cpu",
        kind=template.split(".")[-1],
        template=template,
        description=description,
        flops=flops,
        arg_shapes=((256, 256), (256, 256)),
        output_shape=(256, 256),
        num_weights=1,
        kernel_name="k0",
        module_text="",
    )


def _add(
    db: TuningDatabase,
    key: str,
    strategy: str,
    seconds: float | None,
    tile: int = 32,
    shape: tuple[int, int] = (64, 128),
    *,
    error: str | None = None,
    is_default: bool = False,
) -> None:
    """One trial, claimed and finished; `seconds` None makes it a failed trial. A workload
    measures a configuration once, so trials of one workload differ in tile or shape."""
    claim = db.claim(key, {"tile": tile, "shape": shape}, strategy=strategy, budget=100, is_default=is_default)
    assert claim is not None, (key, tile, shape)
    times = [seconds] * 3 if seconds is not None else []
    db.finish(claim, seconds=seconds, times=times, error=error, compile_seconds=0.5 if seconds else 0.0)


def _build(path: Path) -> Path:
    """Three workloads: a tuned matmul, a conv the default wins, a dead pool (tuned in this order)."""
    with open_database(path) as db:
        db.add_workloads(
            [
                _workload("matmul_aaa", "matmul 256x256 * 256x256", "cpu.matmul", MATMUL_FLOPS),
                _workload("conv_bbb", "conv 1x64x56x56 * 64x64x3x3 -> 1x64x56x56", "cpu.conv", 0),
                _workload("pool_ccc", "pool 1x64x112x112", "cpu.pool", 1000),
            ]
        )
        _add(db, "matmul_aaa", "default", 2e-3, 16, is_default=True)  # 0
        _add(db, "matmul_aaa", "ga", 1.5e-3, 32)  # 1
        _add(db, "matmul_aaa", "ga", None, 64, (32, 32), error="compile error: boom")  # 2
        _add(db, "matmul_aaa", "tpe", 1.8e-3, 32, (32, 32))  # 3
        _add(db, "matmul_aaa", "ga", 1.6e-3, 16, (32, 32))  # 4 (no improvement)
        _add(db, "matmul_aaa", "ga", 1.0e-3, 64)  # 5 best
        _add(db, "matmul_aaa", "tpe", 1.2e-3, 64, (16, 16))  # 6
        _add(db, "matmul_aaa", "random", 3e-3, 16, (16, 16))  # 7

        _add(db, "conv_bbb", "default", 4e-3, 16, is_default=True)
        _add(db, "conv_bbb", "ga", 5e-3, 32)
        _add(db, "conv_bbb", "ga", None, 64, error="timeout")

        _add(db, "pool_ccc", "tpe", None, 16, error="wrong output")
        _add(db, "pool_ccc", "tpe", None, 32, error="crash")
    return path


def _trials(db: Path, key: str) -> list:
    with open_database(db) as database:
        return database.trials([key])[key]


@pytest.fixture(scope="module", params=[".db", ".journal"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("tuning") / f"tuning{request.param}")


def _by_name(summaries: list[KernelSummary]) -> dict[str, KernelSummary]:
    return {s.study_name: s for s in summaries}


def test_summarize(db: Path) -> None:
    summaries = summarize(str(db))
    assert [s.study_name for s in summaries] == ["matmul_aaa", "conv_bbb", "pool_ccc"]
    s = _by_name(summaries)

    mm = s["matmul_aaa"]
    assert mm.description == "matmul 256x256 * 256x256"
    assert (mm.template, mm.target, mm.device) == ("cpu.matmul", "cpu", "test cpu")
    assert mm.default_seconds == pytest.approx(2e-3)
    assert mm.best_seconds == pytest.approx(1e-3)
    assert mm.speedup == pytest.approx(2.0)
    assert (mm.trials, mm.failures) == (7, 1)
    assert mm.best_config == {"tile": 64, "shape": [64, 128]}
    assert mm.best_strategy == "ga"
    assert mm.flops == MATMUL_FLOPS
    assert mm.gflops == pytest.approx(MATMUL_FLOPS / 1e-3 / 1e9)

    conv = s["conv_bbb"]  # default_seconds comes from the is_default trial
    assert conv.default_seconds == pytest.approx(4e-3)
    assert conv.best_seconds == pytest.approx(4e-3)
    assert conv.speedup == pytest.approx(1.0)
    assert conv.best_strategy == "default"
    assert (conv.trials, conv.failures) == (2, 1)
    assert conv.flops == 0 and conv.gflops is None

    pool = s["pool_ccc"]
    assert pool.default_seconds is None and pool.best_seconds is None and pool.speedup is None
    assert pool.best_config is None and pool.best_strategy is None and pool.gflops is None
    assert (pool.trials, pool.failures) == (0, 2)


def test_summarize_filter_and_unknown_study(db: Path) -> None:
    assert [s.study_name for s in summarize(db, ["pool_ccc", "matmul_aaa"])] == ["pool_ccc", "matmul_aaa"]
    with pytest.raises(ValueError, match="no study named nope"):
        summarize(db, ["nope"])


def test_reading_never_creates_storage(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        summarize(missing)
    with pytest.raises(FileNotFoundError):
        write_report(missing, tmp_path / "out")
    assert not missing.exists() and not (tmp_path / "out").exists()


def test_best_so_far(db: Path) -> None:
    trials = _trials(db, "matmul_aaa")
    assert best_so_far(trials, "ga") == [(1, 1.5e-3), (2, 1.5e-3), (3, 1.5e-3), (4, 1.0e-3)]
    assert best_so_far(trials, "tpe") == [(1, 1.8e-3), (2, 1.2e-3)]
    assert best_so_far(trials, "random") == [(1, 3e-3)]
    assert best_so_far(trials, "nope") == []
    everything = best_so_far(trials, None)  # the default trial included, failures take an index
    assert [i for i, _ in everything] == list(range(1, 9))
    assert [v for _, v in everything] == pytest.approx([2e-3, 1.5e-3, 1.5e-3, 1.5e-3, 1.5e-3, 1e-3, 1e-3, 1e-3])
    values = [v for _, v in everything]
    assert all(a >= b for a, b in itertools.pairwise(values))

    pool = _trials(db, "pool_ccc")
    assert best_so_far(pool, "tpe") == []
    conv = _trials(db, "conv_bbb")
    assert best_so_far(conv, "ga") == [(1, 5e-3), (2, 5e-3)]
    assert best_so_far(conv, "default") == [(1, 4e-3)]


def test_write_csv(db: Path, tmp_path: Path) -> None:
    summaries = summarize(db)
    path = write_csv(summaries, tmp_path / "summary.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == SUMMARY_COLUMNS
    by = {r["study"]: r for r in rows}
    mm = by["matmul_aaa"]
    assert float(mm["default_ms"]) == pytest.approx(2.0)
    assert float(mm["best_ms"]) == pytest.approx(1.0)
    assert float(mm["speedup"]) == pytest.approx(2.0)
    assert (mm["trials"], mm["failures"], mm["best_strategy"]) == ("7", "1", "ga")
    assert float(mm["gflops"]) == pytest.approx(MATMUL_FLOPS / 1e-3 / 1e9, rel=1e-5)
    assert json.loads(mm["best_config"]) == {"tile": 64, "shape": [64, 128]}
    assert mm["description"] == "matmul 256x256 * 256x256" and mm["template"] == "cpu.matmul"
    pool = by["pool_ccc"]
    assert pool["best_ms"] == pool["default_ms"] == pool["speedup"] == pool["gflops"] == pool["best_config"] == ""
    assert pool["failures"] == "2"


def test_write_trials_csv(db: Path, tmp_path: Path) -> None:
    path = write_trials_csv(db, tmp_path / "trials.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == TRIAL_COLUMNS
    assert len(rows) == 8 + 3 + 2
    mm = [r for r in rows if r["study"] == "matmul_aaa"]
    assert [int(r["trial"]) for r in mm] == list(range(8))
    assert [r["strategy"] for r in mm] == ["default", "ga", "ga", "tpe", "ga", "ga", "tpe", "random"]
    assert mm[2]["state"] == "FAIL" and mm[2]["value_ms"] == "" and mm[2]["error"] == "compile error: boom"
    assert mm[1]["state"] == "COMPLETE" and float(mm[1]["value_ms"]) == pytest.approx(1.5)
    ga_best = [float(r["kernel_best_so_far_ms"]) for r in mm if r["strategy"] == "ga"]
    assert ga_best == pytest.approx([1.5, 1.5, 1.5, 1.0])
    tpe_best = [float(r["kernel_best_so_far_ms"]) for r in mm if r["strategy"] == "tpe"]
    assert tpe_best == pytest.approx([1.8, 1.2])
    assert json.loads(mm[5]["config"]) == {"tile": 64, "shape": [64, 128]}
    conv = [r for r in rows if r["study"] == "conv_bbb"]
    # The measured configuration, tuples as lists (decoding Optuna params when an old trial had no
    # `config` attribute is tested with the migration, test_tuning_database.py).
    assert json.loads(conv[1]["config"]) == {"tile": 32, "shape": [64, 128]}
    pool = [r for r in rows if r["study"] == "pool_ccc"]
    assert [r["kernel_best_so_far_ms"] for r in pool] == ["", ""]
    assert [r["model_estimate_best_so_far_ms"] for r in pool] == ["", ""]  # no default time: not in the estimate
    only = write_trials_csv(db, tmp_path / "only.csv", studies=["conv_bbb"])
    with only.open(newline="") as f:
        assert {r["study"] for r in csv.DictReader(f)} == {"conv_bbb"}


def _assert_png(path: Path, min_size: int = 5000) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > min_size


def test_write_report(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "report"
    paths = write_report(db, out)
    assert [p.name for p in paths] == [
        "summary.csv",
        "trials.csv",
        "model_estimate.png",
        "kernel_times.png",
        "convergence.png",
        "speedups.png",
    ]
    assert all(p.parent == out and p.is_file() for p in paths)
    _assert_png(out / "model_estimate.png")
    _assert_png(out / "kernel_times.png")
    _assert_png(out / "convergence.png")
    _assert_png(out / "speedups.png")
    with (out / "summary.csv").open(newline="") as f:
        assert [r["study"] for r in csv.DictReader(f)] == ["matmul_aaa", "conv_bbb", "pool_ccc"]


def test_plot_convergence_caps_studies(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = []
    new_figure = report._new_figure

    def capture(width: float, height: float) -> Any:
        figure = new_figure(width, height)
        figures.append(figure)
        return figure

    monkeypatch.setattr(report, "MAX_PLOTTED_STUDIES", 2)
    monkeypatch.setattr(report, "_new_figure", capture)
    report.plot_convergence(db, tmp_path / "conv.png")
    (figure,) = figures
    assert "first 2 of 3" in figure._suptitle.get_text()
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [
        "matmul 256x256 * 256x256",
        "conv 1x64x56x56 * 64x64x3x3 -> 1x64x56x56",
    ]
    labels = [line.get_label() for line in visible[0].get_lines()]
    assert labels == ["ga", "tpe", "random", "default"]
    _assert_png(tmp_path / "conv.png")


def test_plot_speedups_edge_cases(tmp_path: Path) -> None:
    long = KernelSummary("k", "x" * 200, "cpu.matmul", "cpu", "d", 1.0, 0.5, 2.0, 3, 0, {}, "ga", 0, None)
    none = KernelSummary("n", "dead", "cpu.pool", "cpu", "d", None, None, None, 0, 2, None, None, 0, None)
    _assert_png(plot_speedups([long, none], tmp_path / "s.png"))
    _assert_png(plot_speedups([], tmp_path / "empty.png"), min_size=1000)


def test_format_table(db: Path) -> None:
    table = format_table(summarize(db))
    lines = table.splitlines()
    assert lines[0].split() == [
        "kernel", "description", "weight", "GFLOP", "default", "µs", "best", "µs", "GFLOP/s", "speedup", "trials",
        "failures",
    ]  # fmt: skip
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + 3 + 2  # header, rule, 3 kernels, rule, the weighted total
    mm = next(line for line in lines if line.startswith("matmul"))
    assert mm.split()[-7:] == ["0.034", "2000.0", "1000.0", "33.55", "2.00x", "7", "1"]
    pool = next(line for line in lines if line.startswith("pool"))
    assert pool.split()[-7:] == ["<0.001", "-", "-", "-", "-", "0", "2"]
    total = lines[-1].split()
    assert total[0] == "total" and total[-5:] == ["6000.0", "5000.0", "1.20x", "9", "4"]
    # Numbers are right-aligned: every row ends at the same column as the header.
    width = len(lines[0])
    assert all(len(line) == width for line in lines)


def test_main_writes_report(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["--db", str(db), "-o", str(out), "--study", "matmul_aaa"]) == 0
    captured = capsys.readouterr()
    assert "matmul 256x256" in captured.out and "conv 1x64" not in captured.out
    assert f"wrote {out / 'summary.csv'}" in captured.out
    assert f"wrote {out / 'speedups.png'}" in captured.out
    assert captured.err == ""
    _assert_png(out / "convergence.png", min_size=3000)


def test_main_errors(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.journal"
    assert main(["--db", str(missing), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wpk tune-report: error: ") and "does not exist" in err
    assert not missing.exists() and not (tmp_path / "out").exists()

    assert main(["--db", str(db), "-o", str(tmp_path / "out"), "--study", "nope"]) == 2
    assert "no study named nope" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["--db", str(db)])  # -o is required
    capsys.readouterr()


@pytest.mark.parametrize("suffix", [".db", ".journal"])
def test_main_empty_storage(suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / f"empty{suffix}"
    open_database(empty).close()
    assert empty.exists()
    assert main(["--db", str(empty), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wpk tune-report: error: no tuning records in ")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="no tuning records in"):
        write_report(empty, tmp_path / "out")
