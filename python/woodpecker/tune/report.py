"""The tuning report: what tuning found, per kernel, read from the tuning database.

`summarize` gives one `KernelSummary` per workload (one per kernel signature, see
`woodpecker.database` for the schema): the default configuration's time, the recorded (best)
time, the speedup, the trial counts and the recorded configuration. A signature can stand for
several kernels of a model (ResNet's repeated blocks): given the model's kernels per workload
(`kernels=`, from `wpk tune` or `wpk tune-report --model`), a summary has their names and its
weight (how often it occurs), and `weighted_total` is the model's estimated time, the sum over
kernels of weight x time (without them every workload counts once). `write_report` writes into
a folder

* `summary.csv`: one row per kernel (`write_csv`);
* `trials.csv`: one row per trial, with the best time so far of that kernel in its search
  strategy (`kernel_best_so_far_ms`) and the model's estimated time after it
  (`model_estimate_best_so_far_ms`, `model_estimate`) (`write_trials_csv`);
* `model_estimate.png`: the model's estimated time (weighted sum of the best kernel times so
  far) against the trials and against the wall time of the search, one line per strategy
  (`plot_model_estimate`);
* `kernel_times.png`: default and best time per kernel on a log axis, named by kernel, the
  kernels under 1% of the model's time left out (`plot_kernel_times`);
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from woodpecker.database import COMPLETE, FAILED, FINISHED, Record, Trial, Workload, database_exists, open_database
from woodpecker.database.layout import is_layout_key
from woodpecker.database.open import default_location
from woodpecker.database.schema import config_to_json
from woodpecker.kernels.naming import join_names
from woodpecker.table import Column, format_quantity, format_us
from woodpecker.table import format_table as text_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_PLOTTED_STUDIES = 24
PLOT_COLUMNS = 4
TITLE_CHARS = 48
TABLE_KERNEL_CHARS = 56
# The per-kernel time chart leaves out the kernels under this share of the model's default time.
MIN_PLOTTED_SHARE = 0.01

SUMMARY_COLUMNS = (
    "study",
    "kernels",
    "weight",
    "description",
    "template",
    "target",
    "device",
    "default_ms",
    "best_ms",
    "speedup",
    "trials",
    "failures",
    "gflop",
    "gflops",
    "best_strategy",
    "best_config",
)
# kernel_best_so_far_ms: the best time of this workload's trials of this strategy so far;
# model_estimate_best_so_far_ms: the model's estimated time (sum of weight x best kernel time,
# the default where no trial of the strategy beat it) once this trial had finished.
TRIAL_COLUMNS = (
    "study",
    "kernels",
    "trial",
    "strategy",
    "state",
    "value_ms",
    "kernel_best_so_far_ms",
    "model_estimate_best_so_far_ms",
    "error",
    "config",
)
STATE_NAMES = {COMPLETE: "COMPLETE", FAILED: "FAIL", "running": "RUNNING"}  # as trials.csv spells them

# Line order and colours of the search strategies in the convergence plot.
_STRATEGY_ORDER = ("ga", "tpe", "rl", "random", "import")
_STRATEGY_COLORS = {
    "ga": "tab:blue",
    "tpe": "tab:orange",
    "rl": "tab:red",
    "random": "tab:green",
    "import": "tab:purple",
}
STRATEGY_NAMES = {"ga": "genetic (ga)", "tpe": "Optuna TPE (tpe)", "rl": "reinforce (rl)", "random": "random",
                  "import": "imported"}  # fmt: skip


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
    kernels: tuple[str, ...] = ()  # the model's kernels with this signature; () when not known

    @property
    def weight(self) -> int:
        """How often the signature occurs in the model (1 when its kernels are not known)."""
        return len(self.kernels) or 1

    @property
    def kernel_id(self) -> str:
        """The model kernels' names ('k3_conv,k7_conv'), else the workload key."""
        return join_names(self.kernels) if self.kernels else self.study_name

    @property
    def gflop(self) -> float | None:
        return self.flops / 1e9 if self.flops > 0 else None


@dataclass
class WorkloadRecords:
    """One workload as read from the database: its trials (by number), its record and the
    model's kernels it stands for (() when not known)."""

    workload: Workload
    trials: list[Trial]
    record: Record | None
    kernels: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.workload.key

    @property
    def weight(self) -> int:
        return len(self.kernels) or 1

    @property
    def default_seconds(self) -> float | None:
        """The default configuration's time: the record's, else its default trial's."""
        if self.record is not None and _positive(self.record.default_seconds) is not None:
            return _positive(self.record.default_seconds)
        return next((_value(t) for t in self.trials if t.is_default and _value(t) is not None), None)


# The model kernels of each workload key (a model's cut: `KernelTask.model_kernels` by `key`).
ModelKernels = Mapping[str, Sequence[str]]


# --------------------------------------------------------------------------------------------
# Reading the database
# --------------------------------------------------------------------------------------------


def display_url(storage_url: str | os.PathLike | None) -> str:
    return default_location() if storage_url is None else os.fspath(storage_url)


def load_workloads(
    storage_url: str | os.PathLike | None, studies: Sequence[str] | None = None, kernels: ModelKernels | None = None
) -> list[WorkloadRecords]:
    """The workloads with trials (all, in the order they were first tuned, or `studies` in the
    order given); with a model's `kernels`, only the model's workloads, with their kernels. A
    local file that is not there is an error, never created."""
    if not database_exists(storage_url):
        raise FileNotFoundError(f"no tuning records: {display_url(storage_url)} does not exist")
    with open_database(storage_url) as db:
        # layout decisions (database/layout.py) are no kernels: not in the kernel tables
        stored = db.keys()
        keys = [k for k in stored if not is_layout_key(k)] if studies is None else list(dict.fromkeys(studies))
        workloads = db.workloads(keys)
        trials = db.trials(keys)
        records = db.records(keys)
    if studies is not None:
        missing = [key for key in keys if key not in workloads]
        if missing:
            raise ValueError(f"no study named {', '.join(missing)} in {display_url(storage_url)}")
    else:
        keys = sorted((k for k in keys if trials.get(k)), key=lambda k: (min(t.claimed_at for t in trials[k]), k))
    if kernels is not None:
        keys = [k for k in keys if k in kernels]
    names = kernels or {}
    return [WorkloadRecords(workloads[k], trials.get(k, []), records.get(k), tuple(names.get(k, ()))) for k in keys]


def load_nonempty(
    storage_url: str | os.PathLike | None, studies: Sequence[str] | None, kernels: ModelKernels | None = None
) -> list[WorkloadRecords]:
    records = load_workloads(storage_url, studies, kernels)
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
    default_seconds = records.default_seconds
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
        kernels=records.kernels,
    )


def summarize(
    storage_url: str | os.PathLike | None, studies: Sequence[str] | None = None, kernels: ModelKernels | None = None
) -> list[KernelSummary]:
    """One summary per workload with trials (None: the default database), or per named workload;
    with a model's `kernels`, per workload of the model, weighted by its kernels.

    Raises FileNotFoundError for a local database file that does not exist and ValueError for
    a named workload that is not in the database.
    """
    return [_summary(record) for record in load_workloads(storage_url, studies, kernels)]


@dataclass(frozen=True)
class WeightedTotal:
    """The model's estimated time: the sum over its kernels of weight x time, with the default
    configurations and with the best ones (the default where nothing beat it)."""

    default_seconds: float
    best_seconds: float
    kernels: int  # model kernels counted (the weights' sum)
    left_out: int  # signatures without a default time, not counted

    @property
    def speedup(self) -> float | None:
        return self.default_seconds / self.best_seconds if self.best_seconds > 0 else None


def weighted_total(summaries: Sequence[KernelSummary]) -> WeightedTotal:
    """Sum over the signatures with a default time of weight x default and weight x best."""
    known = [s for s in summaries if s.default_seconds is not None]
    return WeightedTotal(
        default_seconds=sum(s.weight * (s.default_seconds or 0.0) for s in known),
        best_seconds=sum(s.weight * (s.best_seconds or s.default_seconds or 0.0) for s in known),
        kernels=sum(s.weight for s in known),
        left_out=len(summaries) - len(known),
    )


@dataclass(frozen=True)
class EstimatePoint:
    """The model's estimated time once `trials` trials of one strategy had finished."""

    trials: int  # that strategy's finished trials so far, every kernel's
    wall_seconds: float  # since the strategy's first claim
    seconds: float  # sum of weight x best time so far (the default where nothing beat it)
    key: str | None = None  # the trial that gave the point (None: the start, every default)
    number: int | None = None


def model_estimate(records: Sequence[WorkloadRecords], strategy: str) -> list[EstimatePoint]:
    """The model's estimated time against the trials of `strategy`, in the order they finished
    (every kernel's): it starts at the weighted sum of the default times and drops when a
    trial beats its kernel's best so far. Workloads without a default time are left out; []
    when the strategy has no finished trial of the others."""
    best = {r.name: r.default_seconds for r in records if r.default_seconds is not None}
    weights = {r.name: r.weight for r in records}
    chosen = sorted(
        (t for r in records if r.name in best for t in r.trials if t.finished and t.strategy == strategy),
        key=lambda t: (t.finished_at or t.claimed_at, t.key, t.number),
    )
    if not chosen:
        return []
    start = min(t.claimed_at for t in chosen)
    points = [EstimatePoint(0, 0.0, sum(weights[k] * v for k, v in best.items()))]
    for index, trial in enumerate(chosen, start=1):
        value = _value(trial)
        if value is not None and value < best[trial.key]:
            best[trial.key] = value
        total = sum(weights[k] * v for k, v in best.items())
        points.append(EstimatePoint(index, (trial.finished_at or trial.claimed_at) - start, total, trial.key,
                                    trial.number))  # fmt: skip
    return points


def strategies_of(records: Sequence[WorkloadRecords]) -> list[str]:
    """The search strategies with trials in `records` (not the default), in plotting order."""
    present = {t.strategy for r in records for t in r.trials} - {"default"}
    return [s for s in _STRATEGY_ORDER if s in present] + sorted(present - set(_STRATEGY_ORDER))


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
                    " ".join(s.kernels),
                    s.weight,
                    s.description,
                    s.template,
                    s.target,
                    s.device,
                    _fmt(_ms(s.default_seconds), ".9g"),
                    _fmt(_ms(s.best_seconds), ".9g"),
                    _fmt(s.speedup, ".6g"),
                    s.trials,
                    s.failures,
                    _fmt(s.gflop, ".6g"),
                    _fmt(s.gflops, ".6g"),
                    s.best_strategy or "",
                    _config_json(s.best_config),
                ]
            )
    return path


def _write_trials(records: Sequence[WorkloadRecords], path: Path) -> Path:
    estimates = {
        (point.key, point.number): point.seconds
        for strategy in strategies_of(records)
        for point in model_estimate(records, strategy)
    }
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
                        " ".join(record.kernels),
                        trial.number,
                        strategy,
                        STATE_NAMES.get(trial.state, trial.state.upper()),
                        _fmt(_ms(value), ".9g"),
                        _fmt(_ms(best.get(strategy)), ".9g"),
                        _fmt(_ms(estimates.get((record.name, trial.number))), ".9g"),
                        trial.error or "",
                        _config_json(_config_dict(trial.config)),
                    ]
                )
    return path


def write_trials_csv(
    storage_url: str | os.PathLike | None,
    path: str | os.PathLike,
    studies: Sequence[str] | None = None,
    kernels: ModelKernels | None = None,
) -> Path:
    """One row per trial (`TRIAL_COLUMNS`): its time, the best time so far of its kernel in its
    strategy and the model's estimated time after it."""
    return _write_trials(load_workloads(storage_url, studies, kernels), Path(path))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


TABLE_COLUMNS = (
    Column("kernel"),
    Column("description"),
    Column("weight", right=True),
    Column("GFLOP", right=True),
    Column("default µs", right=True),
    Column("best µs", right=True),
    Column("GFLOP/s", right=True),
    Column("speedup", right=True),
    Column("trials", right=True),
    Column("failures", right=True),
)


def _speedup(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def format_table(summaries: Sequence[KernelSummary]) -> str:
    """A fixed-width table for the terminal, one row per kernel signature (its kernels, how often
    it occurs, GFLOP, default and best time in µs, GFLOP/s at the best time, speedup, trials,
    failures), then the weighted total: the model's estimated time, sum of weight x time."""
    rows = [
        (
            s.kernel_id,
            _shorten(s.description, TABLE_KERNEL_CHARS),
            str(s.weight),
            format_quantity(s.gflop),
            format_us(s.default_seconds),
            format_us(s.best_seconds),
            format_quantity(s.gflops),
            _speedup(s.speedup),
            str(s.trials),
            str(s.failures),
        )
        for s in summaries
    ]
    total = weighted_total(summaries)
    label = "weighted total (sum of weight x time)"
    if total.left_out:
        label += f", {total.left_out} without a default time left out"
    footer = [(
        "total", label, str(total.kernels), "", format_us(total.default_seconds), format_us(total.best_seconds), "",
        _speedup(total.speedup), str(sum(s.trials for s in summaries)), str(sum(s.failures for s in summaries)),
    )]  # fmt: skip
    return text_table(TABLE_COLUMNS, rows, footer)


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


def _strategy_name(strategy: str) -> str:
    return STRATEGY_NAMES.get(strategy, strategy)


def context_title(records: Sequence[WorkloadRecords], model: str | None) -> str:
    """What a chart is of: the model (or the recorded kernels), the hardware the times belong
    to (the CPU model name from /proc/cpuinfo, its ISA and threads, as the workloads record it)
    and the search strategies."""
    devices = sorted({r.workload.device for r in records if r.workload.device})
    strategies = [_strategy_name(s) for s in strategies_of(records)]
    what = model if model else f"{len(records)} recorded kernel signatures"
    return f"{what} on {', '.join(devices) or 'unknown hardware'}; strategy {', '.join(strategies) or 'none'}"


def _plot_model_estimate(records: Sequence[WorkloadRecords], path: Path, model: str | None) -> Path:
    """Two panels: the model's estimated time against the trials and against the wall time."""
    figure = _new_figure(12.0, 4.6)
    by_trials, by_time = figure.subplots(1, 2)
    plotted = False
    for strategy in strategies_of(records):
        points = model_estimate(records, strategy)
        if not points:
            continue
        plotted = True
        style = {"drawstyle": "steps-post", "linewidth": 1.4, "color": _STRATEGY_COLORS.get(strategy),
                 "label": _strategy_name(strategy)}  # fmt: skip
        by_trials.plot([p.trials for p in points], [p.seconds * 1e3 for p in points], **style)
        by_time.plot([p.wall_seconds for p in points], [p.seconds * 1e3 for p in points], **style)
    defaults = [r for r in records if r.default_seconds is not None]
    if defaults:
        start = sum(r.weight * (r.default_seconds or 0.0) for r in defaults) * 1e3
        for ax in (by_trials, by_time):
            ax.axhline(start, color="black", linestyle="--", linewidth=1, label="default configurations")
    for ax, xlabel in ((by_trials, "trials of the strategy (every kernel's, in the order they finished)"),
                       (by_time, "wall time of the search (s)")):  # fmt: skip
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel("estimated model latency (ms)", fontsize=9)
        ax.grid(True, alpha=0.3)
        if plotted or defaults:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no finished trials", ha="center", va="center", transform=ax.transAxes)
    by_trials.set_title("against trials", fontsize=9)
    by_time.set_title("against wall time", fontsize=9)
    weights = "weight: occurrences in the model" if any(r.kernels for r in records) else "every signature once"
    figure.suptitle(
        f"Estimated latency (sum of {weights} x best kernel time so far)\n{context_title(records, model)}",
        fontsize=10,
    )
    left_out = len(records) - len(defaults)
    if left_out:
        figure.text(0.01, 0.01, f"{left_out} kernel signature(s) without a default time left out", fontsize=8)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    figure.savefig(path, dpi=100)
    return path


def plot_model_estimate(
    storage_url: str | os.PathLike | None,
    path: str | os.PathLike,
    studies: Sequence[str] | None = None,
    kernels: ModelKernels | None = None,
    model: str | None = None,
) -> Path:
    """A PNG of the model's estimated time (weighted sum of the best kernel times so far)
    against the trials and against the wall time, one line per strategy."""
    return _plot_model_estimate(load_nonempty(storage_url, studies, kernels), Path(path), model)


@dataclass(frozen=True)
class KernelShares:
    """The kernels a per-kernel chart shows (at least `MIN_PLOTTED_SHARE` of the model's
    default time, largest first) and how many it leaves out."""

    shown: list[KernelSummary]
    small: int  # under the share
    untimed: int  # without a default time


def kernel_shares(summaries: Sequence[KernelSummary], min_share: float = MIN_PLOTTED_SHARE) -> KernelShares:
    """Each signature's share of the model's time is weight x default time / the weighted total."""
    timed = [s for s in summaries if s.default_seconds is not None]
    total = weighted_total(timed).default_seconds
    shown = [s for s in timed if total > 0 and s.weight * (s.default_seconds or 0.0) >= min_share * total]
    shown.sort(key=lambda s: -s.weight * (s.default_seconds or 0.0))
    return KernelShares(shown, len(timed) - len(shown), len(summaries) - len(timed))


def plot_kernel_times(
    summaries: Sequence[KernelSummary], path: str | os.PathLike, title: str = "", min_share: float = MIN_PLOTTED_SHARE
) -> Figure:
    """A PNG of default and best time per kernel (µs, log axis), named by kernel, the largest
    share of the model's time first; kernels under `min_share` of it are left out (a footnote
    says how many). Returns the figure."""
    from matplotlib.ticker import FuncFormatter

    shares = kernel_shares(summaries, min_share)
    figure = _new_figure(9.0, max(3.0, 0.42 * len(shares.shown) + 1.8))
    ax = figure.subplots()
    if shares.shown:
        positions = list(range(len(shares.shown)))
        height = 0.38
        defaults = [(s.default_seconds or 0.0) * 1e6 for s in shares.shown]
        bests = [(s.best_seconds or s.default_seconds or 0.0) * 1e6 for s in shares.shown]
        ax.barh([p - height / 2 for p in positions], defaults, height, color="tab:gray", label="default")
        ax.barh([p + height / 2 for p in positions], bests, height, color="tab:blue", label="best")
        labels = [f"{s.kernel_id} (x{s.weight})" if s.weight > 1 else s.kernel_id for s in shares.shown]
        ax.set_yticks(positions, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        values = [v for v in defaults + bests if v > 0]
        low, high = min(values), max(values)
        ax.set_xlim(10 ** math.floor(math.log10(low / 1.5)), high * 2.0)  # bars start a decade below the shortest
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        for y, (s, default, best) in enumerate(zip(shares.shown, defaults, bests, strict=True)):
            ax.text(max(default, best) * 1.05, y, _speedup(s.speedup), va="center", fontsize=7)
        ax.set_xlabel("time per call (µs, log scale)")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no kernel with a default time", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title(f"Best vs default time per kernel\n{title}" if title else "Best vs default time per kernel",
                 fontsize=9)  # fmt: skip
    notes = []
    if shares.small:
        notes.append(f"{shares.small} kernel signature(s) under {min_share:.0%} of the model's default time left out")
    if shares.untimed:
        notes.append(f"{shares.untimed} without a default time left out")
    if notes:
        figure.text(0.01, 0.01, "; ".join(notes), fontsize=7)
    figure.tight_layout(rect=(0, 0.04 if notes else 0, 1, 1))
    figure.savefig(Path(path), dpi=100)
    return figure


def _plot_convergence(records: Sequence[WorkloadRecords], path: Path, model: str | None = None) -> Path:
    from matplotlib.ticker import MaxNLocator

    shown = list(records[:MAX_PLOTTED_STUDIES])
    columns = max(1, min(PLOT_COLUMNS, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    figure = _new_figure(4.2 * columns, 3.2 * rows + 0.6)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, record in zip(axes.flat, shown, strict=False):
        summary = _summary(record)
        strategies = strategies_of([record])
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
        ax.set_title(_shorten(f"{summary.kernel_id}: {summary.description}" if summary.kernels
                              else summary.description, TITLE_CHARS), fontsize=8)  # fmt: skip
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
    figure.suptitle(f"{title}\n{context_title(records, model)}", fontsize=10)
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
        ax.set_yticks(positions, [_shorten(s.kernel_id if s.kernels else s.description, TITLE_CHARS)
                                  for s in ordered], fontsize=7)  # fmt: skip
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
    storage_url: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    studies: Sequence[str] | None = None,
    kernels: ModelKernels | None = None,
    model: str | None = None,
) -> list[Path]:
    """Write summary.csv, trials.csv, model_estimate.png, kernel_times.png, convergence.png and
    speedups.png into `out_dir` (created); with a model's `kernels`, of its workloads, weighted.

    Raises FileNotFoundError for a local database file that does not exist and ValueError when
    the database holds no tuning trials or lacks a named workload.
    """
    return write_report_files(load_nonempty(storage_url, studies, kernels), Path(out_dir), model)[1]


def has_trials(records: Sequence[WorkloadRecords]) -> bool:
    """Whether any workload has a tuning trial (not only implementation-selection timings)."""
    return any(record.trials for record in records)


def write_report_files(
    records: Sequence[WorkloadRecords], out: Path, model: str | None = None
) -> tuple[list[KernelSummary], list[Path]]:
    out.mkdir(parents=True, exist_ok=True)
    summaries = [_summary(record) for record in records]
    paths = [
        write_csv(summaries, out / "summary.csv"),
        _write_trials(records, out / "trials.csv"),
        _plot_model_estimate(records, out / "model_estimate.png", model),
        out / "kernel_times.png",
        _plot_convergence(records, out / "convergence.png", model),
        plot_speedups(summaries, out / "speedups.png"),
    ]
    plot_kernel_times(summaries, out / "kernel_times.png", context_title(records, model))
    return summaries, paths
