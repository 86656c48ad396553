"""`wpk`: the command line of the Woodpecker compiler.

    wpk run [MODEL.onnx] [--input-shape NAME=1x3x224x224] [--repeat N] [--opt-level N]
            [--libraries all|none|onednn|blas] [--select records|measure|heuristic]
    wpk compile MODEL.onnx [--target cpu|cuda] [--libraries ...] [--select ...] [--report FILE] [-o DIR]
    wpk tune [MODEL.onnx] [--target cpu|cuda] [--trials N] [--strategy ga|tpe|random|rl] [--db URL]
    wpk tune-report [--db URL] -o DIR
    wpk measure DIR                  (on a GPU host; imports no MLIR)

Without MODEL, `wpk run` and `wpk tune` use the bundled tiny ResNet. Each sub-command lives in
its own module of this package; this one only parses and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from woodpecker.errors import WoodpeckerError


def build_parser() -> argparse.ArgumentParser:
    from woodpecker.cli import compile as compile_cmd
    from woodpecker.cli import measure, run, tune, tune_report

    parser = argparse.ArgumentParser(prog="wpk", description="Woodpecker inference compiler")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="compile a model for the CPU, run it, compare with onnxruntime")
    run.add_arguments(run_parser)
    run_parser.set_defaults(func=run.cmd_run)
    comp = sub.add_parser("compile", help="compile a model, choosing each kernel's implementation; "
                                          "--target cuda -o DIR writes a deployable plan")
    compile_cmd.add_arguments(comp)
    comp.set_defaults(func=compile_cmd.cmd_compile)
    tune_parser = sub.add_parser("tune", help="auto-tune the schedule of every kernel of a model (Optuna, GA)")
    tune.add_arguments(tune_parser)
    tune_parser.set_defaults(func=tune.cmd_tune)
    report_parser = sub.add_parser("tune-report", help="plots (PNG) and tables (CSV) of the tuning records")
    tune_report.add_arguments(report_parser)
    report_parser.set_defaults(func=tune_report.cmd_tune_report)
    measure_parser = sub.add_parser(
        "measure", help="measure exported CUDA candidates on this GPU host (no MLIR needed)"
    )
    measure.add_arguments(measure_parser)
    measure_parser.set_defaults(func=measure.cmd_measure)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["measure"]:  # on a GPU host that may have no MLIR: import nothing else
        from woodpecker.cli import measure

        return measure.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WoodpeckerError as err:
        print(f"wpk: error: {err}", file=sys.stderr)
        return 1
    except FileNotFoundError as err:
        print(f"wpk: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
