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

from woodpecker.measure import batch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `wpk measure`."""
    parser.add_argument(
        "directory", type=Path, help="a batch directory, or a directory of batches, from `wpk tune --export`"
    )
    parser.add_argument("--repeat", type=int, default=batch.DEFAULT_REPEAT, help="timed runs per candidate")
    parser.add_argument("--warmup", type=int, default=batch.DEFAULT_WARMUP, help="untimed runs first")
    parser.add_argument("--timeout", type=float, default=batch.DEFAULT_TIMEOUT_S, help="seconds per candidate")
    parser.add_argument("--rtol", type=float, default=batch.DEFAULT_RTOL, help="output check against the reference")
    parser.add_argument("--atol", type=float, default=batch.DEFAULT_ATOL,
                        help="absolute tolerance of that check (times the reference's largest magnitude)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")
    parser.add_argument("--no-flush", action="store_true", help="do not flush the L2 cache between repeats")
    parser.add_argument("--retry-failed", action="store_true", help="measure failed candidates again")
    parser.add_argument(
        "--in-process", action="store_true", help="measure in this process (no timeout, no isolation from faults)"
    )


def cmd_measure(args: argparse.Namespace) -> int:
    """`wpk measure` with parsed arguments: 0 done, 1 no usable device, 2 bad directory."""
    if args.repeat < 1 or args.warmup < 0 or not args.timeout > 0:
        print("wpk measure: error: --repeat must be >= 1, --warmup >= 0, --timeout > 0", file=sys.stderr)
        return 2
    try:
        directories = batch.batch_directories(args.directory)
    except batch.BatchError as err:
        print(f"wpk measure: error: {err}", file=sys.stderr)
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
        print(f"wpk measure: error: {err}", file=sys.stderr)
        return 2
    except (batch.NoCudaDeviceError, batch.DeviceMismatchError) as err:
        print(f"wpk measure: error: {err}", file=sys.stderr)
        return 1
    print(batch.format_table(directory))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`wpk measure DIR [--repeat N] [--warmup N] [--timeout S] ...` (argv without "measure")."""
    parser = argparse.ArgumentParser(prog="wpk measure", description="measure a batch of compiled kernel candidates")
    add_arguments(parser)
    return cmd_measure(parser.parse_args(sys.argv[1:] if argv is None else list(argv)))


if __name__ == "__main__":
    sys.exit(main())
