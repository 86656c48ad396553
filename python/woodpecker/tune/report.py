"""The tuning report: what tuning found, per kernel, read from the tuning database.

`summarize` gives one `KernelSummary` per workload (one per kernel signature, see
`woodpecker.database` for the schema): the default configuration's time, the recorded (best)
time, the speedup, the trial counts and the recorded configuration. `write_report` writes into
a folder

* `summary.csv`: one row per kernel (`write_csv`);
* `trials.csv`: one row per trial, with the best time so far of its search strategy
  (`write_trials_csv`);
* `convergence.png`: best time so far against the trial index, one line per strategy, one
  subplot per kernel (`plot_convergence`);
* `speedups.png`: default time / best time per kernel (`plot_speedups`).

`wpk tune-report` (woodpecker.cli.tune_report) writes it. Reading never creates a database:
a local database file that does not exist is a `FileNotFoundError`. Workloads are listed in
the order they were first tuned (their first trial's claim); a workload without trials (only
implementation-selection timings) is not part of the tuning report.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from woodpecker.database import COMPLETE, FAILED, FINISHED, Record, Trial, Workload, database_exists, open_database
from woodpecker.database.open import default_location
from woodpecker.database.schema import config_to_json

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_PLOTTED_STUDIES = 24
PLOT_COLUMNS = 4
TITLE_CHARS = 48
TABLE_KERNEL_CHARS = 56

SUMMARY_COLUMNS = (
    "study",
    "description",
    "template",
    "target",
    "device",
    "default_ms",
    "best_ms",
    "speedup",
    "trials",
    "failures",
    "gflops",
    "best_strategy",
    "best_config",
)
TRIAL_COLUMNS = ("study", "trial", "strategy", "state", "value_ms", "best_so_far_ms", "error", "config")
STATE_NAMES = {COMPLETE: "COMPLETE", FAILED: "FAIL", "running": "RUNNING"}  # as trials.csv spells them

# Line order and colours of the search strategies in the convergence plot.
_STRATEGY_ORDER = ("ga", "tpe", "random", "import")
_STRATEGY_COLORS = {"ga": "tab:blue", "tpe": "tab:orange", "random": "tab:green", "import": "tab:purple"}


@dataclass
class KernelSummary:
    """What tuning found for one kernel signature (one workload; `study_name` is its key)."""

    study_name: str
    description: str
    template: str
    target: str
    device: str
    default_seconds: float | None
    best_seconds: float | None
    speedup: float | None  # default_seconds / best_seconds
    trials: int  # complete trials, the default configuration's included
    failures: int  # failed trials
    best_config: dict[str, Any] | None
    best_strategy: str | None
    flops: int
    gflops: float | None  # at the best time; None when the flop count or the best time is unknown


@dataclass
class WorkloadRecords:
    """One workload as read from the database: its trials (by number) and its record."""

    workload: Workload
    trials: list[Trial]
    record: Record | None

    @property
    def name(self) -> str:
        return self.workload.key


# --------------------------------------------------------------------------------------------
# Reading the database
# --------------------------------------------------------------------------------------------


def display_url(storage_url: str | os.PathLike | None) -> str:
    return default_location() if storage_url is None else os.fspath(storage_url)


def load_workloads(
    storage_url: str | os.PathLike | None, studies: Sequence[str] | None = None
) -> list[WorkloadRecords]:
    """The workloads with trials (all, in the order they were first tuned, or `studies` in the
    order given); a local file that is not there is an error, never created."""
    if not database_exists(storage_url):
        raise FileNotFoundError(f"no tuning records: {display_url(storage_url)} does not exist")
    with open_database(storage_url) as db:
        keys = db.keys() if studies is None else list(dict.fromkeys(studies))
        workloads = db.workloads(keys)
        trials = db.trials(keys)
        records = db.records(keys)
    if studies is not None:
        missing = [key for key in keys if key not in workloads]
        if missing:
            raise ValueError(f"no study named {', '.join(missing)} in {display_url(storage_url)}")
    else:
        keys = sorted((k for k in keys if trials.get(k)), key=lambda k: (min(t.claimed_at for t in trials[k]), k))
    return [WorkloadRecords(workloads[k], trials.get(k, []), records.get(k)) for k in keys]


def load_nonempty(storage_url: str | os.PathLike | None, studies: Sequence[str] | None) -> list[WorkloadRecords]:
    records = load_workloads(storage_url, studies)
    if not records:
        raise ValueError(f"no tuning records in {display_url(storage_url)}")
    return records


def _config_dict(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration as JSON holds it (tuples as lists)."""
    return config_to_json(config)


def _value(trial: Trial) -> float | None:
    """The trial's seconds when it completed with a finite positive time."""
    if trial.state != COMPLETE or trial.seconds is None:
        return None
    value = float(trial.seconds)
    return value if math.isfinite(value) and value > 0 else None


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _summary(records: WorkloadRecords) -> KernelSummary:
    workload, record = records.workload, records.record
    default_seconds = _positive(record.default_seconds) if record is not None else None
    best_seconds = _positive(record.seconds) if record is not None else None
    flops = int(workload.flops or 0)
    return KernelSummary(
        study_name=workload.key,
        description=workload.description or workload.key,
        template=workload.template,
        target=workload.target,
        device=workload.device,
        default_seconds=default_seconds,
        best_seconds=best_seconds,
        speedup=default_seconds / best_seconds if default_seconds and best_seconds else None,
        trials=sum(t.state == COMPLETE for t in records.trials),
        failures=sum(t.state == FAILED for t in records.trials),
        best_config=_config_dict(record.config) if record is not None else None,
        best_strategy=record.strategy if record is not None else None,
        flops=flops,
        gflops=flops / best_seconds / 1e9 if flops > 0 and best_seconds else None,
    )


def summarize(storage_url: str | os.PathLike | None, studies: Sequence[str] | None = None) -> list[KernelSummary]:
    """One summary per workload with trials (None: the default database), or per named workload.

    Raises FileNotFoundError for a local database file that does not exist and ValueError for
    a named workload that is not in the database.
    """
    return [_summary(record) for record in load_workloads(storage_url, studies)]


def best_so_far(trials: Iterable[Trial], strategy: str | None = None) -> list[tuple[int, float]]:
    """The convergence curve: (trial index, best seconds so far) per finished trial.

    With `strategy`, only that strategy's trials count; without, every finished trial does (the
    default configuration's included). Indices start at 1 and follow the trial numbers; a failed
    trial takes an index but improves nothing, and trials before the first success give no point.
    """
    chosen = [t for t in trials if t.state in FINISHED and (strategy is None or t.strategy == strategy)]
    points: list[tuple[int, float]] = []
    best: float | None = None
    for index, trial in enumerate(sorted(chosen, key=lambda t: t.number), start=1):
        value = _value(trial)
        if value is not None and (best is None or value < best):
            best = value
        if best is not None:
            points.append((index, best))
    return points


# --------------------------------------------------------------------------------------------
# CSV files and the terminal table
# --------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _config_json(config: dict[str, Any] | None) -> str:
    return "" if config is None else json.dumps(config, sort_keys=True, default=list)


def write_csv(summaries: Sequence[KernelSummary], path: str | os.PathLike) -> Path:
    """One row per kernel (`SUMMARY_COLUMNS`); times in milliseconds, empty cells where unknown."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SUMMARY_COLUMNS)
        for s in summaries:
            writer.writerow(
                [
                    s.study_name,
                    s.description,
                    s.template,
                    s.target,
                    s.device,
                    _fmt(_ms(s.default_seconds), ".9g"),
                    _fmt(_ms(s.best_seconds), ".9g"),
                    _fmt(s.speedup, ".6g"),
                    s.trials,
                    s.failures,
                    _fmt(s.gflops, ".6g"),
                    s.best_strategy or "",
                    _config_json(s.best_config),
                ]
            )
    return path


def _write_trials(records: Sequence[WorkloadRecords], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TRIAL_COLUMNS)
        for record in records:
            best: dict[str, float] = {}  # per strategy
            for trial in record.trials:
                strategy = trial.strategy
                value = _value(trial)
                if value is not None and (strategy not in best or value < best[strategy]):
                    best[strategy] = value
                writer.writerow(
                    [
                        record.name,
                        trial.number,
                        strategy,
                        STATE_NAMES.get(trial.state, trial.state.upper()),
                        _fmt(_ms(value), ".9g"),
                        _fmt(_ms(best.get(strategy)), ".9g"),
                        trial.error or "",
                        _config_json(_config_dict(trial.config)),
                    ]
                )
    return path


def write_trials_csv(
    storage_url: str | os.PathLike | None, path: str | os.PathLike, studies: Sequence[str] | None = None
) -> Path:
    """One row per trial (`TRIAL_COLUMNS`): its time and the best time so far of its strategy."""
    return _write_trials(load_workloads(storage_url, studies), Path(path))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 1e3 else f"{ms:#.4g}"  # 4 significant digits, trailing zeros kept


def format_table(summaries: Sequence[KernelSummary]) -> str:
    """A fixed-width table for the terminal: numbers right-aligned, '-' where unknown."""
    header = ("kernel", "template", "default ms", "best ms", "speedup", "trials", "failures")
    rows = [
        (
            _shorten(s.description, TABLE_KERNEL_CHARS),
            s.template or "-",
            _fmt_ms(s.default_seconds),
            _fmt_ms(s.best_seconds),
            "-" if s.speedup is None else f"{s.speedup:.2f}x",
            str(s.trials),
            str(s.failures),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    left = (True, True, False, False, False, False, False)

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if lft else c.rjust(w) for c, w, lft in zip(cells, widths, left, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, independent of pyplot and of the user's backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _plot_convergence(records: Sequence[WorkloadRecords], path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    shown = list(records[:MAX_PLOTTED_STUDIES])
    columns = max(1, min(PLOT_COLUMNS, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    figure = _new_figure(4.2 * columns, 3.2 * rows + 0.6)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, record in zip(axes.flat, shown, strict=False):
        summary = _summary(record)
        present = {t.strategy for t in record.trials} - {"default"}
        strategies = [s for s in _STRATEGY_ORDER if s in present] + sorted(present - set(_STRATEGY_ORDER))
        plotted = False
        for strategy in strategies:
            points = best_so_far(record.trials, strategy)
            if not points:
                continue
            xs = [i for i, _ in points]
            ys = [v * 1e3 for _, v in points]
            ax.plot(xs, ys, drawstyle="steps-post", marker=".", markersize=3, linewidth=1.2,
                    color=_STRATEGY_COLORS.get(strategy), label=strategy)  # fmt: skip
            plotted = True
        if summary.default_seconds is not None:
            ax.axhline(summary.default_seconds * 1e3, color="black", linestyle="--", linewidth=1, label="default")
            plotted = True
        if not plotted:
            ax.text(0.5, 0.5, "no successful trials", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(_shorten(summary.description, TITLE_CHARS), fontsize=8)
        ax.set_xlabel("trial", fontsize=8)
        ax.set_ylabel("best time (ms)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    if len(records) > len(shown):
        title = f"Tuning convergence (first {len(shown)} of {len(records)} kernels shown)"
    else:
        title = f"Tuning convergence ({len(records)} kernel{'s' if len(records) != 1 else ''})"
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def plot_convergence(
    storage_url: str | os.PathLike | None, path: str | os.PathLike, studies: Sequence[str] | None = None
) -> Path:
    """A PNG of best time so far (ms) against trial index, one subplot per study (at most 24).

    One line per search strategy, a dashed line at the default configuration's time. Raises
    ValueError when the database holds no tuning trials.
    """
    return _plot_convergence(load_nonempty(storage_url, studies), Path(path))


def plot_speedups(summaries: Sequence[KernelSummary], path: str | os.PathLike) -> Path:
    """A PNG bar chart of default time / best time per kernel, fastest-improved first."""
    path = Path(path)
    ordered = sorted(summaries, key=lambda s: -1.0 if s.speedup is None else s.speedup, reverse=True)
    figure = _new_figure(9.0, max(2.5, 0.32 * len(ordered) + 1.4))
    ax = figure.subplots()
    if not ordered:
        ax.text(0.5, 0.5, "no kernels", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        positions = list(range(len(ordered)))
        values = [s.speedup or 0.0 for s in ordered]
        colors = ["tab:green" if v >= 1.0 else "tab:red" for v in values]
        ax.barh(positions, values, color=colors, height=0.7)
        ax.set_yticks(positions, [_shorten(s.description, TITLE_CHARS) for s in ordered], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
        top = max([*values, 1.0])
        for y, (s, v) in enumerate(zip(ordered, values, strict=True)):
            label = "n/a" if s.speedup is None else f"{v:.2f}x"
            ax.text(v + top * 0.01, y, label, va="center", fontsize=7)
        ax.set_xlim(0, top * 1.15)
        ax.set_xlabel("speedup over the default configuration (default time / best time)")
        ax.grid(True, axis="x", alpha=0.3)
    ax.set_title("Tuning speedups")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


# --------------------------------------------------------------------------------------------
# The whole report and its command line
# --------------------------------------------------------------------------------------------


def write_report(
    storage_url: str | os.PathLike | None, out_dir: str | os.PathLike, studies: Sequence[str] | None = None
) -> list[Path]:
    """Write summary.csv, trials.csv, convergence.png and speedups.png into `out_dir` (created).

    Raises FileNotFoundError for a local database file that does not exist and ValueError when
    the database holds no tuning trials or lacks a named workload.
    """
    return write_report_files(load_nonempty(storage_url, studies), Path(out_dir))[1]


def write_report_files(records: Sequence[WorkloadRecords], out: Path) -> tuple[list[KernelSummary], list[Path]]:
    out.mkdir(parents=True, exist_ok=True)
    summaries = [_summary(record) for record in records]
    paths = [
        write_csv(summaries, out / "summary.csv"),
        _write_trials(records, out / "trials.csv"),
        _plot_convergence(records, out / "convergence.png"),
        plot_speedups(summaries, out / "speedups.png"),
    ]
    return summaries, paths
