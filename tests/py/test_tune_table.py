"""The tuning output a person can trust: the table weighted by how often each kernel occurs
(synthetic records), the per-kernel and model-estimate plots (inspected through matplotlib's
API), the end-to-end verdict from interleaved samples (a fake clock, no timing), selection-only
storage, and `wpk tune` / `wpk tune-report --model` on the bundled model with a tiny budget."""

from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path

import pytest

from woodpecker.cli.main import main as wpk_main
from woodpecker.database import CandidateTiming, Selection, TuningDatabase, Workload, open_database
from woodpecker.models import bundled_model_path
from woodpecker.tune.end_to_end import EndToEnd, Spread, measure_interleaved
from woodpecker.tune.report import (
    format_table,
    load_workloads,
    model_estimate,
    plot_kernel_times,
    summarize,
    weighted_total,
    write_report,
)

# Three signatures of a model: a conv that occurs three times, a matmul once, a tiny pool once.
KERNELS = {"conv_a": ("k0_conv", "k3_conv", "k6_conv"), "mm_b": ("k8_matmul",), "pool_c": ("k9_pool",)}
DEFAULTS = {"conv_a": 200e-6, "mm_b": 150e-6, "pool_c": 1e-6}
BESTS = {"conv_a": 100e-6, "mm_b": 120e-6, "pool_c": 1e-6}


def _workload(key: str, kind: str, flops: int = 2_000_000) -> Workload:
    return Workload(key=key, target="cpu", device="Test CPU avx2 2t", kind=kind, template=f"cpu.{kind}",
                    description=f"{kind} 1x8x8x8", flops=flops, arg_shapes=((1, 8, 8, 8),), output_shape=(1, 8, 8, 8),
                    num_weights=0, kernel_name=f"k0_{kind}", module_text="")  # fmt: skip


def _trial(db: TuningDatabase, key: str, strategy: str, seconds: float, tile: int, is_default: bool = False) -> None:
    claim = db.claim(key, {"tile": tile}, strategy=strategy, budget=100, is_default=is_default)
    assert claim is not None
    db.finish(claim, seconds=seconds, times=[seconds] * 3)


def _build(path: Path) -> Path:
    with open_database(path) as db:
        db.add_workloads([_workload("conv_a", "conv"), _workload("mm_b", "matmul"), _workload("pool_c", "pool", 0)])
        for key in KERNELS:
            _trial(db, key, "default", DEFAULTS[key], 1, is_default=True)
        _trial(db, "conv_a", "ga", 150e-6, 2)
        _trial(db, "conv_a", "ga", BESTS["conv_a"], 3)
        _trial(db, "mm_b", "ga", BESTS["mm_b"], 2)
        _trial(db, "mm_b", "ga", 300e-6, 3)  # slower: the estimate stays
        _trial(db, "conv_a", "tpe", 180e-6, 4)
        _trial(db, "pool_c", "ga", 2e-6, 2)
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("table") / "tuning.db")


def test_weighted_total_is_sum_of_weight_times_time(db: Path) -> None:
    summaries = summarize(db, kernels=KERNELS)
    assert {s.study_name: s.weight for s in summaries} == {"conv_a": 3, "mm_b": 1, "pool_c": 1}
    total = weighted_total(summaries)
    assert total.default_seconds == pytest.approx(sum(len(KERNELS[k]) * DEFAULTS[k] for k in KERNELS))
    assert total.best_seconds == pytest.approx(sum(len(KERNELS[k]) * BESTS[k] for k in KERNELS))
    assert total.kernels == 5 and total.left_out == 0
    # Without the model's kernels every signature counts once.
    once = weighted_total(summarize(db))
    assert once.default_seconds == pytest.approx(sum(DEFAULTS.values()))


def test_table_columns_names_and_microseconds(db: Path) -> None:
    lines = format_table(summarize(db, kernels=KERNELS)).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "kernel", "description", "weight", "GFLOP", "default µs", "best µs", "GFLOP/s", "speedup", "trials",
        "failures",
    ]  # fmt: skip
    conv = next(line for line in lines if line.startswith("k0_conv,k3_conv,k6_conv"))
    assert conv.split()[-8:] == ["3", "0.002", "200.0", "100.0", "20.00", "2.00x", "4", "0"]
    pool = next(line for line in lines if line.startswith("k9_pool"))
    assert pool.split()[-6:-3] == ["1.00", "1.00", "-"]  # µs with 2 decimals, no GFLOP/s without flops
    total = lines[-1].split()
    assert total[:2] == ["total", "weighted"] and total[-5:-3] == ["751.0", "421.0"]
    # No time with more than 2 decimals anywhere (the old table showed 0.0005265).
    assert not re.search(r"\d\.\d{4,}", "\n".join(lines))


def test_model_estimate_steps_down_to_the_weighted_best(db: Path, tmp_path: Path) -> None:
    records = load_workloads(db, kernels=KERNELS)
    ga = model_estimate(records, "ga")
    assert [p.trials for p in ga] == list(range(6))
    start = sum(len(KERNELS[k]) * DEFAULTS[k] for k in KERNELS)
    assert ga[0].seconds == pytest.approx(start)
    assert ga[1].seconds == pytest.approx(start - 3 * 50e-6)  # conv 200 -> 150 µs, three times
    assert ga[-1].seconds == pytest.approx(weighted_total(summarize(db, kernels=KERNELS)).best_seconds)
    assert all(a.seconds >= b.seconds for a, b in itertools.pairwise(ga))
    assert all(a.wall_seconds <= b.wall_seconds for a, b in itertools.pairwise(ga))
    tpe = model_estimate(records, "tpe")
    assert [p.seconds for p in tpe] == pytest.approx([start, start - 3 * 20e-6])
    write_report(db, tmp_path, kernels=KERNELS, model="m.onnx")
    with (tmp_path / "trials.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["strategy"] == "ga"]
    by_trial = {(r["study"], r["trial"]): r for r in rows}
    assert float(by_trial[("pool_c", "1")]["model_estimate_best_so_far_ms"]) == pytest.approx(ga[-1].seconds * 1e3)
    assert float(by_trial[("conv_a", "1")]["kernel_best_so_far_ms"]) == pytest.approx(0.150)


def test_kernel_under_one_percent_is_left_out_of_the_plot(db: Path, tmp_path: Path) -> None:
    figure = plot_kernel_times(summarize(db, kernels=KERNELS), tmp_path / "kernels.png", "m.onnx on Test CPU")
    (ax,) = figure.axes
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert labels == ["k0_conv,k3_conv,k6_conv (x3)", "k8_matmul"]  # largest share first; the pool is 1/751
    assert ax.get_xscale() == "log"
    notes = [text.get_text() for text in figure.texts]
    assert any("1 kernel signature(s) under 1% of the model's default time left out" in n for n in notes)
    assert "m.onnx on Test CPU" in ax.get_title()


def test_titles_name_model_cpu_and_strategy(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from woodpecker.tune import report

    figures = []
    new_figure = report._new_figure
    monkeypatch.setattr(report, "_new_figure", lambda w, h: figures.append(new_figure(w, h)) or figures[-1])
    write_report(db, tmp_path, kernels=KERNELS, model="m.onnx")
    estimate = figures[0]
    title = estimate._suptitle.get_text()
    assert "m.onnx" in title and "Test CPU avx2 2t" in title and "genetic (ga)" in title and "TPE" in title
    lines = [line.get_label() for line in estimate.axes[0].get_lines()]
    assert lines == ["genetic (ga)", "Optuna TPE (tpe)", "default configurations"]
    assert [ax.get_xlabel() for ax in estimate.axes][1] == "wall time of the search (s)"


def test_selection_only_study_says_so(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mixed = _build(tmp_path / "mixed.db")
    with open_database(mixed) as database:
        database.add_workloads([_workload("sel_d", "matmul")])
        database.put_selection(Selection("sel_d", {}, 2e-3, {"generated": CandidateTiming(2e-3),
                                                              "blas": CandidateTiming(1e-3)}))  # fmt: skip
    out = tmp_path / "report"
    assert wpk_main(["tune-report", "--db", str(mixed), "-o", str(out), "--study", "sel_d"]) == 0
    printed = capsys.readouterr().out
    said = [line for line in printed.splitlines() if "no tuning trials" in line]
    assert len(said) == 1 and "selection timings only" in said[0]
    assert sorted(p.name for p in out.iterdir()) == ["selection.csv", "selection.png"]  # no empty panels


def _spread(median: float, q1: float, q3: float) -> Spread:
    return Spread(median, q1, q3, q1 * 0.9, q3 * 1.1, 15)


def test_end_to_end_verdict_from_the_spreads() -> None:
    faster = EndToEnd(_spread(0.412e-3, 0.405e-3, 0.420e-3), _spread(0.301e-3, 0.298e-3, 0.305e-3), 10)
    assert faster.verdict == "faster"
    assert faster.line().startswith("end to end: 0.412 ms -> 0.301 ms median (1.37x faster; IQR 0.405-0.420 ms")
    overlap = EndToEnd(_spread(0.412e-3, 0.400e-3, 0.420e-3), _spread(0.405e-3, 0.395e-3, 0.415e-3), 10)
    assert overlap.verdict == "no faster" and ": no faster (the interquartile ranges overlap" in overlap.line()
    slower = EndToEnd(_spread(0.3e-3, 0.29e-3, 0.31e-3), _spread(0.6e-3, 0.59e-3, 0.61e-3), 1)
    assert slower.verdict == "slower" and "(2.00x slower;" in slower.line()


def test_measure_interleaved_alternates() -> None:
    now = [0.0]
    calls: list[str] = []

    def model(name: str, seconds: float):
        def run() -> None:
            calls.append(name)
            now[0] += seconds

        return run

    result = measure_interleaved(model("A", 2e-3), model("B", 1e-3), rounds=4, sample_seconds=4e-3,
                                 clock=lambda: now[0])  # fmt: skip
    assert result.calls_per_sample == 2  # the slower one's sample lasts sample_seconds
    assert calls[:4] == ["A", "A", "B", "B"]  # warm-up and calibration call of each
    assert calls[4:] == ["A", "A", "B", "B"] * 4  # ABAB, one sample of each per round
    assert result.before.median == pytest.approx(2e-3) and result.after.median == pytest.approx(1e-3)
    assert result.verdict == "faster" and result.before.samples == 4


def test_wpk_tune_and_report_on_the_bundled_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.db"
    common = ["--db", str(db), "--trials", "2", "--kernel", "k4_conv", "--in-process", "--confirm", "0",
              "--no-progress", "--seed", "0", "--layout", "nchw"]  # fmt: skip
    assert wpk_main(["tune", *common]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("kernel "))
    assert re.split(r"\s{2,}", header)[2:6] == ["weight", "GFLOP", "default µs", "best µs"]
    assert any(line.startswith("k4_conv ") for line in out.splitlines())
    assert any(line.startswith("total ") and "weighted total" in line for line in out.splitlines())
    assert "sum of kernel times" not in out
    (verdict,) = [line for line in out.splitlines() if line.startswith("end to end: ")]
    assert (
        " ms median" in verdict and "interleaved rounds" in verdict and "1 of 11 kernels with tuning records" in verdict
    )

    assert wpk_main(["tune", *common, "--no-end-to-end"]) == 0  # the budget is spent: nothing measured again
    assert "end to end" not in capsys.readouterr().out

    report_dir = tmp_path / "report"
    model = str(bundled_model_path())
    assert wpk_main(["tune-report", "--db", str(db), "-o", str(report_dir), "--model", model, "--layout", "nchw"]) == 0
    capsys.readouterr()
    with (report_dir / "summary.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["kernels"], row["weight"]) == ("k4_conv", "1")
    assert (report_dir / "model_estimate.png").is_file() and (report_dir / "kernel_times.png").is_file()


def test_measure_interleaved_pauses_after_every_sample(monkeypatch) -> None:
    """`pause_s` sleeps once after each timed sample of either side (2 sides x rounds), never inside one."""
    from woodpecker.tune import end_to_end

    events: list[str] = []
    monkeypatch.setattr(end_to_end.time, "sleep", lambda s: events.append(f"sleep {s}"))
    end_to_end.measure_interleaved(lambda: events.append("a"), lambda: events.append("b"), rounds=2,
                                   sample_seconds=0.0, pause_s=0.3)
    timed = events[4:]  # after the warm-up and one timed call of each
    assert timed == ["a", "sleep 0.3", "b", "sleep 0.3"] * 2
