"""`wpk run`: compile a model for the CPU, run it, and compare it with ONNX Runtime."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from woodpecker.cli.common import (
    add_model_arguments,
    add_selection_arguments,
    bundled_model,
    model_bytes,
    summarize,
    time_calls,
)
from woodpecker.database import DatabaseError


def cmd_run(args: argparse.Namespace) -> int:
    import woodpecker
    from woodpecker.compiler import random_feeds

    model_path = Path(args.model) if args.model else bundled_model()
    shapes = dict(args.input_shape or [])
    print(f"model: {model_path}")
    options = woodpecker.CompileOptions(opt_level=args.opt_level, use_tuning_records=not args.no_records,
                                        tuning_db=args.db, libraries=args.libraries, select=args.select)
    if args.schedule:
        from woodpecker.targets.schedule_pass import load_request

        request = load_request(args.schedule)
        if request.target != "cpu":
            raise woodpecker.WoodpeckerError(f"{args.schedule}: 'wpk run' runs on the cpu, not {request.target}")
        options.cpu.schedules = request.kernels
    start = time.perf_counter()
    try:
        compiled = woodpecker.compile(model_path, input_shapes=shapes or None, options=options)
    except DatabaseError as err:  # the tuning database (--db) cannot be read
        print(f"wpk run: error: {err}", file=sys.stderr)
        return 1
    compile_s = time.perf_counter() - start
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in compiled.stats.stage_seconds.items())
    stats = compiled.stats
    print(f"compiled for cpu at O{args.opt_level} in {compile_s:.2f}s ({stages}); "
          f"{stats.num_ops_before} ops -> {stats.num_kernels} kernels "
          f"({stats.tuned_kernels} with tuning records, {stats.library_kernels} library calls); "
          f"{'OpenMP on all cores' if compiled.stats.parallel else 'one core'}")
    if args.report:
        write_selection_report(args.report, compiled, model_path, options)
    feeds = random_feeds(compiled, seed=args.seed)
    outputs = compiled.run(None, feeds)
    for name, value in zip(compiled.output_names, outputs, strict=True):
        print(f"output '{name}': {summarize(value)}")
    ours = time_calls(lambda: compiled.run(None, feeds), args.repeat)
    print(f"woodpecker latency: median {ours.median_ms:.3f} ms (min {ours.min_ms:.3f} ms, {args.repeat} runs)")
    if args.no_compare:
        return 0
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: skipping the comparison (pip install 'woodpecker[ref]')")
        return 0
    session = ort.InferenceSession(model_bytes(model_path, shapes), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    worst = 0.0
    agree = True
    for name, got, ref in zip(compiled.output_names, outputs, expected, strict=True):
        diff = float(np.max(np.abs(got.astype(np.float64) - ref))) if got.size else 0.0
        ok = bool(np.allclose(got, ref, rtol=1e-4, atol=1e-5))
        agree &= ok
        worst = max(worst, diff)
        print(f"agreement with onnxruntime on '{name}': max abs diff {diff:.3e} "
              f"({'OK' if ok else 'MISMATCH'} at rtol=1e-4, atol=1e-5)")
    theirs = time_calls(lambda: session.run(None, feeds), args.repeat)
    print(f"onnxruntime latency: median {theirs.median_ms:.3f} ms (min {theirs.min_ms:.3f} ms)")
    print(f"latency ratio woodpecker/onnxruntime: {ours.median_ms / theirs.median_ms:.2f}x")
    return 0 if agree else 2


def write_selection_report(path: str, compiled, model_path: Path, options) -> None:
    from woodpecker.select.report import selection_report, write_report
    from woodpecker.targets.cpu import CpuTarget

    target = CpuTarget(options.cpu)
    report = selection_report(
        compiled.selection,
        heuristic=target.heuristic_text,
        model=str(model_path),
        target="cpu",
        libraries=options.libraries,
        select=options.select,
        device=target.device,
    )
    write_report(path, report)
    print(f"wrote the selection report {path}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `wpk run`."""
    add_model_arguments(parser, model_help="ONNX file (default: the bundled tiny ResNet)")
    parser.add_argument("--schedule", metavar="FILE",
                        help="schedule configurations (JSON, as for wpk-opt --wpk-apply-schedule)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs (median reported)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--no-compare", action="store_true", help="do not run onnxruntime")
    add_selection_arguments(parser, "records")

