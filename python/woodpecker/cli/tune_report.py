"""`wpk tune-report`: tables (CSV) and plots (PNG) of the tuning records.

    wpk tune-report -o DIR [--db DB] [--study KEY ...] [--model MODEL.onnx [--input-shape ...] [--threads N]]

With `--model`, the report is of that model's kernels (cut as `wpk tune` cuts them on this
CPU: the same `--opt-level`, `--input-shape` and `--threads`), each signature weighted by how
often it occurs, and the plots are titled with the model; without it every recorded signature
counts once. A database (or `--study` selection) with implementation-selection timings only
says so in one line and writes the selection table and chart, no empty tuning plots.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from woodpecker.cli.common import add_shape_arguments
from woodpecker.cli.parsing import WpkArgumentParser, directory_path, positive_int
from woodpecker.database import DatabaseError
from woodpecker.tune import report

if TYPE_CHECKING:
    from woodpecker.select.selection import KernelChoice

PROG = "wpk tune-report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `wpk tune-report` (for a `wpk` sub-command parser)."""
    parser.add_argument(
        "--db",
        default=None,
        help="the tuning database: a path (SQLite, or a .journal file) or a postgresql:// URL "
        "(default: $WOODPECKER_TUNING_DB, else ~/.cache/woodpecker/tuning.db)",
    )
    parser.add_argument(
        "-o", "--output-dir", required=True, type=directory_path, help="the folder to write the report into"
    )
    parser.add_argument(
        "--study", action="append", default=None, metavar="KEY", help="report only this workload (repeatable)"
    )
    model = parser.add_argument_group("the model (weights: how often each kernel occurs)")
    model.add_argument(
        "--model",
        metavar="ONNX",
        help="report this model's kernels, weighted by their occurrences, with its name in the plot titles (CPU)",
    )
    add_shape_arguments(
        model,
        shape_help="the size of an input's open dimensions, as it was tuned (repeatable)",
        opt_help="the graph optimization level it was tuned at",
    )
    model.add_argument(
        "--threads", type=positive_int, help="the threads the model was tuned with (default: every core)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = WpkArgumentParser(
        prog=PROG, description="Summarize tuning records: CSV files, convergence and speedup plots."
    )
    add_arguments(parser)
    return parser


def records_use(args: argparse.Namespace) -> str:
    """`wpk tune-report` only reads the tuning database."""
    return "read only"


def cmd_tune_report(args: argparse.Namespace) -> int:
    """Run `wpk tune-report` with parsed arguments: errors go to stderr, exit status 2 for a
    missing database or workload, 1 for a database that cannot be read."""
    out = Path(args.output_dir)
    try:
        kernels = _model_kernels(args) if args.model else None
        records = report.load_workloads(args.db, args.study, kernels)
        if not report.has_trials(records):
            return _selection_only(args.db, out, records, kernels, args.model)
        summaries, paths = report.write_report_files(records, out, Path(args.model).name if args.model else None)
    except DatabaseError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(report.format_table(summaries))
    print()
    paths += _write_selection(args.db, out, kernels)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _model_kernels(args: argparse.Namespace) -> dict[str, tuple[str, ...]]:
    """The --model's kernels per workload key, cut as `wpk tune` cuts them."""
    from woodpecker.tune.tune_model import model_kernel_names

    shapes = dict(args.input_shape or []) or None
    return model_kernel_names(args.model, args.opt_level, shapes, args.threads, args.layout)


def _selection_only(
    storage_url: str | None,
    out: Path,
    records: list[report.WorkloadRecords],
    kernels: dict[str, tuple[str, ...]] | None,
    model: str | None,
) -> int:
    """No tuning trials among the workloads asked for: the selection timings alone (one line
    says so), else an error naming what has no records."""
    from woodpecker.select.report import stored_choices

    where = report.display_url(storage_url)
    keys = {r.name for r in records} if records else (set(kernels) if kernels is not None else None)
    if not _of_keys(stored_choices(storage_url), keys):
        if model is not None:
            print(f"{PROG}: error: none of the {len(kernels or ())} kernel signatures of {model} has tuning records "
                  f"in {where} (a signature's key names the CPU and the thread count: pass the --threads it was "
                  "tuned with)", file=sys.stderr)  # fmt: skip
        else:
            print(f"{PROG}: error: no tuning records in {where}", file=sys.stderr)
        return 2
    what = f"{where} holds"
    if records:
        what = f"the {len(records)} workload(s) asked for in {where} have"
    elif model is not None:
        what = f"the kernels of {model} in {where} have"
    print(f"{what} implementation-selection timings only, no tuning trials: no tuning summary or plots")
    out.mkdir(parents=True, exist_ok=True)
    for path in _write_selection(storage_url, out, keys):
        print(f"wrote {path}")
    return 0


def _of_keys(choices: list[KernelChoice], keys: Collection[str] | None) -> list[KernelChoice]:
    """The recorded choices of the workloads `keys` (every one when None)."""
    return choices if keys is None else [c for c in choices if c.key in keys]


def _write_selection(storage_url: str | None, out: Path, keys: Collection[str] | None = None) -> list[Path]:
    """The implementation choices recorded by compiles (woodpecker.select) of the workloads
    `keys` (None: every one): a table on stdout, selection.csv and selection.png; nothing when
    none are recorded."""
    from woodpecker.select.report import format_table as selection_table
    from woodpecker.select.report import plot_selection, stored_choices, write_selection_csv

    choices = _of_keys(stored_choices(storage_url), keys)
    if not choices:
        return []
    print("implementation selection (generated kernel vs libraries), ms per call:")
    print(selection_table(choices))
    print()
    write_selection_csv(out / "selection.csv", choices)
    plot_selection(out / "selection.png", choices)
    return [out / "selection.csv", out / "selection.png"]


def main(argv: Sequence[str] | None = None) -> int:
    """`wpk tune-report --db URL -o DIR [--study NAME ...]`."""
    return cmd_tune_report(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
