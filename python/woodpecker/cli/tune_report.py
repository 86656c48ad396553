"""`wpk tune-report`: tables (CSV) and plots (PNG) of the tuning records."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from woodpecker.database import DatabaseError
from woodpecker.tune import report

PROG = "wpk tune-report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `wpk tune-report` (for a `wpk` sub-command parser)."""
    parser.add_argument(
        "--db",
        default=None,
        help="the tuning database: a path (SQLite, or a .journal file) or a postgresql:// URL "
        "(default: $WOODPECKER_TUNING_DB, else ~/.cache/woodpecker/tuning.db)",
    )
    parser.add_argument("-o", "--output-dir", required=True, help="the folder to write the report into")
    parser.add_argument(
        "--study", action="append", default=None, metavar="KEY", help="report only this workload (repeatable)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Summarize tuning records: CSV files, convergence and speedup plots."
    )
    add_arguments(parser)
    return parser


def cmd_tune_report(args: argparse.Namespace) -> int:
    """Run `wpk tune-report` with parsed arguments: errors go to stderr, exit status 2 for a
    missing database or workload, 1 for a database that cannot be read."""
    out = Path(args.output_dir)
    try:
        records = report.load_workloads(args.db, args.study)
        if not records:
            return _selection_only(args.db, out)
        summaries, paths = report.write_report_files(records, out)
    except DatabaseError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(report.format_table(summaries))
    print()
    paths += _write_selection(args.db, out)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _selection_only(storage_url: str | None, out: Path) -> int:
    """No tuning trials: the selection timings alone (one line says so), else an error."""
    from woodpecker.select.report import stored_choices

    where = report.display_url(storage_url)
    if not stored_choices(storage_url):
        print(f"{PROG}: error: no tuning records in {where}", file=sys.stderr)
        return 2
    print(f"{where} holds implementation-selection timings only, no tuning trials: no tuning summary or plots")
    out.mkdir(parents=True, exist_ok=True)
    for path in _write_selection(storage_url, out):
        print(f"wrote {path}")
    return 0


def _write_selection(storage_url: str | None, out: Path) -> list[Path]:
    """The implementation choices recorded by compiles (woodpecker.select): a table on stdout,
    selection.csv and selection.png; nothing when none are recorded."""
    from woodpecker.select.report import format_table as selection_table
    from woodpecker.select.report import plot_selection, stored_choices, write_selection_csv

    choices = stored_choices(storage_url)
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
