"""The tuning report: what tuning found, per kernel, read from a tuning storage.

`summarize` gives one `KernelSummary` per study (one study per kernel signature, see
`woodpecker.tune.storage` for the layout of the records): the default configuration's time,
the best time, the speedup, the trial counts and the best configuration. `write_report` writes
into a folder

* `summary.csv`: one row per kernel (`write_csv`);
* `trials.csv`: one row per trial, with the best time so far of its search strategy
  (`write_trials_csv`);
* `convergence.png`: best time so far against the trial index, one line per strategy, one
  subplot per kernel (`plot_convergence`);
* `speedups.png`: default time / best time per kernel (`plot_speedups`).

`wpk tune-report` (woodpecker.cli.tune_report) writes it. Reading never creates a storage:
a local storage file that does not exist is a `FileNotFoundError`.
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

import optuna
from optuna.trial import FrozenTrial, TrialState

from woodpecker.tune.confirm import chosen_trial, confirmed_of
from woodpecker.tune.confirm import default_seconds as default_confirmed_seconds
from woodpecker.tune.storage import normalize_url, open_storage, storage_exists

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from optuna.storages import BaseStorage

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

# Finished trials: each takes a trial index in the convergence curves (only COMPLETE ones improve).
_FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
# Line order and colours of the search strategies in the convergence plot.
_STRATEGY_ORDER = ("ga", "tpe", "random", "import")
_STRATEGY_COLORS = {"ga": "tab:blue", "tpe": "tab:orange", "random": "tab:green", "import": "tab:purple"}


@dataclass
class KernelSummary:
    """What tuning found for one kernel signature (one study)."""

    study_name: str
    description: str
    template: str
    target: str
    device: str
    default_seconds: float | None
    best_seconds: float | None
    speedup: float | None  # default_seconds / best_seconds
    trials: int  # COMPLETE trials, the default configuration's included
    failures: int  # FAIL trials
    best_config: dict[str, Any] | None
    best_strategy: str | None
    flops: int
    gflops: float | None  # at the best time; None when the flop count or the best time is unknown


@dataclass
class _StudyRecords:
    """One study as read from the storage."""

    name: str
    user_attrs: dict[str, Any]
    trials: list[FrozenTrial]


# --------------------------------------------------------------------------------------------
# Reading the storage
# --------------------------------------------------------------------------------------------


def display_url(storage_url: str | os.PathLike | None) -> str:
    return normalize_url(storage_url)


def _open_existing(storage_url: str | os.PathLike | None) -> BaseStorage:
    """The storage at `storage_url`; a local file that is not there is an error, never created."""
    if not storage_exists(storage_url):
        raise FileNotFoundError(f"no tuning records: {display_url(storage_url)} does not exist")
    return open_storage(storage_url)


def _load(storage_url: str | os.PathLike | None, studies: Sequence[str] | None = None) -> list[_StudyRecords]:
    """The studies of the storage (all, in creation order, or `studies` in the order given)."""
    storage = _open_existing(storage_url)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    by_name = {summary.study_name: summary for summary in summaries}
    if studies is None:
        names = [summary.study_name for summary in summaries]
    else:
        names = list(dict.fromkeys(studies))
        missing = [name for name in names if name not in by_name]
        if missing:
            raise ValueError(f"no study named {', '.join(missing)} in {display_url(storage_url)}")
    records = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        records.append(_StudyRecords(name=name, user_attrs=dict(by_name[name].user_attrs), trials=trials))
    return records


def load_nonempty(storage_url: str | os.PathLike | None, studies: Sequence[str] | None) -> list[_StudyRecords]:
    records = _load(storage_url, studies)
    if not records:
        raise ValueError(f"no tuning records in {display_url(storage_url)}")
    return records


def _json_dict(value: Any) -> dict[str, Any] | None:
    """A dict stored either as a dict or as JSON text; None when it is neither."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def _strategy(trial: FrozenTrial) -> str:
    strategy = trial.user_attrs.get("strategy")
    if strategy:
        return str(strategy)
    return "default" if trial.user_attrs.get("is_default") else "unknown"


def _config(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's configuration: the `config` attribute, else its decoded Optuna params."""
    config = _json_dict(trial.user_attrs.get("config"))
    if config is not None:
        return config
    from woodpecker.tune.params import decode

    return dict(decode(trial.params))


def _value(trial: FrozenTrial) -> float | None:
    """The trial's seconds when it completed with a finite positive time."""
    if trial.state != TrialState.COMPLETE or trial.value is None:
        return None
    value = float(trial.value)
    return value if math.isfinite(value) and value > 0 else None


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _summary(record: _StudyRecords) -> KernelSummary:
    task = _json_dict(record.user_attrs.get("task")) or {}
    confirmed = confirmed_of(record.user_attrs)
    default_seconds = _positive(default_confirmed_seconds(record.trials, confirmed))
    if default_seconds is None:
        default_seconds = _positive(record.user_attrs.get("default_seconds"))
    best_trial: FrozenTrial | None = None
    best_seconds: float | None = None
    chosen = chosen_trial([t for t in record.trials if _value(t) is not None], confirmed)
    if chosen is not None:  # the record a compile uses: the confirmed fastest, else the fastest
        best_trial, best_seconds = chosen
    try:
        flops = int(task.get("flops") or 0)
    except (TypeError, ValueError):
        flops = 0
    return KernelSummary(
        study_name=record.name,
        description=str(task.get("description") or record.name),
        template=str(task.get("template") or ""),
        target=str(task.get("target") or ""),
        device=str(task.get("device") or ""),
        default_seconds=default_seconds,
        best_seconds=best_seconds,
        speedup=default_seconds / best_seconds if default_seconds and best_seconds else None,
        trials=sum(t.state == TrialState.COMPLETE for t in record.trials),
        failures=sum(t.state == TrialState.FAIL for t in record.trials),
        best_config=_config(best_trial) if best_trial is not None else None,
        best_strategy=_strategy(best_trial) if best_trial is not None else None,
        flops=flops,
        gflops=flops / best_seconds / 1e9 if flops > 0 and best_seconds else None,
    )


def summarize(storage_url: str | os.PathLike | None, studies: Sequence[str] | None = None) -> list[KernelSummary]:
    """One summary per study of the storage (None: the default storage), or per named study.

    Raises FileNotFoundError for a local storage file that does not exist and ValueError for a
    named study that is not in the storage.
    """
    return [_summary(record) for record in _load(storage_url, studies)]


def best_so_far(trials: Iterable[FrozenTrial], strategy: str | None = None) -> list[tuple[int, float]]:
    """The convergence curve: (trial index, best seconds so far) per finished trial.

    With `strategy`, only that strategy's trials count; without, every finished trial does (the
    default configuration's included). Indices start at 1 and follow the trial numbers; a failed
    trial takes an index but improves nothing, and trials before the first success give no point.
    """
    chosen = [t for t in trials if t.state in _FINISHED and (strategy is None or _strategy(t) == strategy)]
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


def _write_trials(records: Sequence[_StudyRecords], path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TRIAL_COLUMNS)
        for record in records:
            best: dict[str, float] = {}  # per strategy
            for trial in record.trials:
                strategy = _strategy(trial)
                value = _value(trial)
                if value is not None and (strategy not in best or value < best[strategy]):
                    best[strategy] = value
                writer.writerow(
                    [
                        record.name,
                        trial.number,
                        strategy,
                        trial.state.name,
                        _fmt(_ms(value), ".9g"),
                        _fmt(_ms(best.get(strategy)), ".9g"),
                        str(trial.user_attrs.get("error") or ""),
                        _config_json(_config(trial)),
                    ]
                )
    return path


def write_trials_csv(
    storage_url: str | os.PathLike | None, path: str | os.PathLike, studies: Sequence[str] | None = None
) -> Path:
    """One row per trial (`TRIAL_COLUMNS`): its time and the best time so far of its strategy."""
    return _write_trials(_load(storage_url, studies), Path(path))


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


def _plot_convergence(records: Sequence[_StudyRecords], path: Path) -> Path:
    from matplotlib.ticker import MaxNLocator

    shown = list(records[:MAX_PLOTTED_STUDIES])
    columns = max(1, min(PLOT_COLUMNS, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    figure = _new_figure(4.2 * columns, 3.2 * rows + 0.6)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax, record in zip(axes.flat, shown, strict=False):
        summary = _summary(record)
        present = {_strategy(t) for t in record.trials} - {"default"}
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
    ValueError when the storage holds no studies.
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

    Raises FileNotFoundError for a local storage file that does not exist and ValueError when the
    storage holds no studies or lacks a named one.
    """
    return write_report_files(load_nonempty(storage_url, studies), Path(out_dir))[1]


def write_report_files(records: Sequence[_StudyRecords], out: Path) -> tuple[list[KernelSummary], list[Path]]:
    out.mkdir(parents=True, exist_ok=True)
    summaries = [_summary(record) for record in records]
    paths = [
        write_csv(summaries, out / "summary.csv"),
        _write_trials(records, out / "trials.csv"),
        _plot_convergence(records, out / "convergence.png"),
        plot_speedups(summaries, out / "speedups.png"),
    ]
    return summaries, paths
