"""`wpk measure DIR`: measure exported CUDA candidates on a GPU host (imports no MLIR).

`wpk tune --target cuda --export DIR` on a machine with MLIR writes batch directories
(`woodpecker.measure.batch`); this command measures them here and writes `results.json` next
to them, for `wpk tune --import-results DIR` back on the compiling machine.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from woodpecker.cli.parsing import (
    WpkArgumentParser,
    non_negative_int,
    parse_with,
    positive_float,
    positive_int,
    run_command,
)
from woodpecker.measure import batch

PROG = "wpk measure"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `wpk measure`."""
    parser.add_argument(
        "directory", type=Path, help="a batch directory, or a directory of batches, from `wpk tune --export`"
    )
    parser.add_argument("--repeat", type=positive_int, default=batch.DEFAULT_REPEAT, help="timed runs per candidate")
    parser.add_argument("--warmup", type=non_negative_int, default=batch.DEFAULT_WARMUP, help="untimed runs first")
    parser.add_argument("--timeout", type=positive_float, default=batch.DEFAULT_TIMEOUT_S, help="seconds per candidate")
    parser.add_argument("--rtol", type=float, default=batch.DEFAULT_RTOL, help="relative tolerance of the output check")
    parser.add_argument(
        "--atol",
        type=float,
        default=batch.DEFAULT_ATOL,
        help="absolute tolerance of that check (times the reference's largest magnitude)",
    )
    parser.add_argument("--device", type=non_negative_int, default=0, help="CUDA device index")
    parser.add_argument("--no-flush", action="store_true", help="do not flush the L2 cache between repeats")
    parser.add_argument("--retry-failed", action="store_true", help="measure failed candidates again")
    parser.add_argument(
        "--in-process", action="store_true", help="measure in this process (no timeout, no isolation from faults)"
    )


def cmd_measure(args: argparse.Namespace) -> int:
    """`wpk measure` with parsed arguments: 0 done, 1 no usable device, 2 bad directory."""
    try:
        directories = batch.batch_directories(args.directory)
    except batch.BatchError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    for directory in directories:
        code = _measure_directory(args, directory)
        if code:
            return code
    return 0


def _measure_directory(args: argparse.Namespace, directory: Path) -> int:
    try:
        batch.measure_batch(
            directory,
            repeat=args.repeat,
            warmup=args.warmup,
            timeout_s=args.timeout,
            rtol=args.rtol,
            atol=args.atol,
            isolate=not args.in_process,
            flush_l2=not args.no_flush,
            device=args.device,
            retry_failed=args.retry_failed,
            log=lambda text: print(text, file=sys.stderr, flush=True),
        )
    except batch.BatchError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except (batch.NoCudaDeviceError, batch.DeviceMismatchError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    print(batch.format_table(directory))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`wpk measure DIR [--repeat N] [--warmup N] [--timeout S] ...` (argv without "measure")."""
    parser = WpkArgumentParser(prog=PROG, description="measure a batch of compiled kernel candidates")
    add_arguments(parser)
    args = parse_with(parser, list(sys.argv[1:] if argv is None else argv))
    if isinstance(args, int):
        return args
    return run_command(PROG, lambda: cmd_measure(args))


if __name__ == "__main__":
    sys.exit(main())
