"""`wpk`: the command line of the Woodpecker compiler.

    wpk run [MODEL.onnx] [--input NAME=@x.npy ...] [--inputs feeds.npz] [--output DIR|FILE.npz]
            [--input-shape NAME=1x3x224x224] [--repeat N] [--seed N] [--opt-level N]
            [--libraries all|none|onednn|blas] [--select records|measure|heuristic] [--db DB]
    wpk compile MODEL.onnx [--target cpu|cuda] [--libraries ...] [--select ...] [--report FILE] [-o DIR]
    wpk tune [MODEL.onnx] [--target cpu|cuda] [--trials N] [--strategy ga|tpe|random|rl] [--db DB]
    wpk tune-report [--db DB] -o DIR
    wpk measure DIR                  (on a GPU host; imports no MLIR)
    wpk --version

Without MODEL, `wpk run` and `wpk tune` use the bundled tiny ResNet. Each sub-command lives in
its own module of this package; this one only parses and dispatches. Every sub-command ends
the same way (`woodpecker.cli.parsing`): exit status 0, 1 for a failure, 2 for a usage error,
130 for Ctrl-C, an error as one line `wpk <sub>: error: ...`; one that reads or writes tuning
records first says which, on stderr (`wpk run: tuning records: ~/.cache/woodpecker/tuning.db
(read only)`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from woodpecker.cli.parsing import WpkArgumentParser, parse_with, run_command, storage_text


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("woodpecker")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from woodpecker.cli import compile as compile_cmd
    from woodpecker.cli import measure, run, tune, tune_report

    parser = WpkArgumentParser(prog="wpk", description="Woodpecker inference compiler")
    parser.add_argument("--version", action="version", version=f"wpk {package_version()}",
                        help="print the version of the woodpecker package and exit")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="the sub-command")
    commands = [
        ("run", run, run.cmd_run, "compile a model for the CPU, run it, compare with onnxruntime"),
        (
            "compile",
            compile_cmd,
            compile_cmd.cmd_compile,
            "compile a model, choosing each kernel's implementation; --target cuda -o DIR writes a deployable plan",
        ),
        ("tune", tune, tune.cmd_tune, "auto-tune the schedule of every kernel of a model (Optuna, GA)"),
        (
            "tune-report",
            tune_report,
            tune_report.cmd_tune_report,
            "plots (PNG) and tables (CSV) of the tuning records",
        ),
        ("measure", measure, measure.cmd_measure, "measure exported CUDA candidates on this GPU host (no MLIR needed)"),
    ]
    for name, module, func, text in commands:
        command = sub.add_parser(name, help=text, description=text)
        module.add_arguments(command)
        command.set_defaults(func=func, records_use=getattr(module, "records_use", None), parser=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["measure"]:  # on a GPU host that may have no MLIR: import nothing else
        from woodpecker.cli import measure

        return measure.main(argv[1:])
    args = parse_with(build_parser(), argv)
    if isinstance(args, int):
        return args
    prog = f"wpk {args.command}"

    def command() -> int:
        use = args.records_use(args) if args.records_use else None
        if use:
            print(f"{prog}: tuning records: {storage_text(args.db)} ({use})", file=sys.stderr, flush=True)
        return args.func(args)

    return run_command(prog, command)


if __name__ == "__main__":
    sys.exit(main())
