"""`wpk tune-report`: tables (CSV) and plots (PNG) of the tuning records."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from woodpecker.tune import report

PROG = "wpk tune-report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `wpk tune-report` (for a `wpk` sub-command parser)."""
    parser.add_argument(
        "--db",
        default=None,
        help="the tuning storage: a path (.db SQLite, .journal/.log journal file) or a URL "
        "(default: $WOODPECKER_TUNING_DB, else ~/.cache/woodpecker/tuning.db)",
    )
    parser.add_argument("-o", "--output-dir", required=True, help="the folder to write the report into")
    parser.add_argument(
        "--study", action="append", default=None, metavar="NAME", help="report only this study (repeatable)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Summarize tuning records: CSV files, convergence and speedup plots."
    )
    add_arguments(parser)
    return parser


def cmd_tune_report(args: argparse.Namespace) -> int:
    """Run `wpk tune-report` with parsed arguments; errors go to stderr with exit status 2."""
    try:
        if not report.storage_exists(args.db):
            raise FileNotFoundError(f"no tuning records: {report.display_url(args.db)} does not exist")
        summaries, paths = report.write_report_files(report.load_nonempty(args.db, args.study), Path(args.output_dir))
    except (ValueError, FileNotFoundError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(report.format_table(summaries))
    print()
    paths += _write_selection(args.db, Path(args.output_dir))
    for path in paths:
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
