"""`wpk compile`: compile a model, choosing each kernel's implementation; write a plan."""

from __future__ import annotations

import argparse
import collections
import time
from pathlib import Path

from woodpecker.cli.common import (
    add_model_arguments,
    add_selection_arguments,
    apply_shape_options,
    records_use,
)
from woodpecker.cli.parsing import directory_path
from woodpecker.cli.run import write_selection_report

__all__ = ["add_arguments", "cmd_compile", "records_use"]


def _select(args: argparse.Namespace) -> str:
    """--select as given (default "records": nothing is measured unless asked), except that
    "measure" for CUDA on a machine without a GPU falls back to the stated heuristic (and the
    command says so)."""
    if args.select != "measure" or args.target != "cuda":
        return args.select
    from woodpecker.runtime.cuda.launch import cuda_status
    from woodpecker.targets.cuda import CUDA_HEURISTIC

    reason = cuda_status()
    if reason is None:
        return "measure"
    print(
        f"no GPU here ({reason}): nothing is measured; generated kernels use their tuning records or default "
        f"configurations, and the heuristic chooses each kernel's implementation: {CUDA_HEURISTIC}"
    )
    return "heuristic"


def cmd_compile(args: argparse.Namespace) -> int:
    import woodpecker
    from woodpecker.importer.loader import declared_inputs, read_model
    from woodpecker.runtime.memory import format_bytes

    proto = read_model(args.model)
    apply_shape_options(declared_inputs(proto), args.input_shape)  # a bad --input-shape: before compiling
    select = _select(args)
    options = woodpecker.CompileOptions(
        target=args.target,
        opt_level=args.opt_level,
        use_tuning_records=not args.no_records,
        tuning_db=args.db,
        libraries=args.libraries,
        select=select,
        arch=args.arch,
        layout=args.layout,
    )
    start = time.perf_counter()
    compiled = woodpecker.compile(proto, input_shapes=dict(args.input_shape or []) or None, options=options)
    seconds = time.perf_counter() - start
    stats = compiled.stats
    print(
        f"compiled {args.model} for {args.target} in {seconds:.2f}s: {stats.num_kernels} kernels "
        f"({stats.tuned_kernels} with tuning records, {stats.library_kernels} library calls); "
        f"peak activation memory {format_bytes(stats.peak_activation_bytes)}; layout: {stats.layout}"
    )
    if compiled.selection:
        from woodpecker.select.report import format_table

        print(format_table(compiled.selection))
        heuristic = [c for c in compiled.selection if c.how == "heuristic"]
        if heuristic:
            from woodpecker.compiler import target_class

            rule = target_class(args.target).heuristic_text
            print(
                f"{len(heuristic)} kernel signatures chosen by the heuristic, not measured: {rule} "
                "(--select measure measures them)"
            )
    if args.target == "cuda":
        plan = compiled.plan
        steps = collections.Counter(s.impl for s in plan.steps)
        print(
            f"plan: {len(plan.steps)} steps ({', '.join(f'{n} {impl}' for impl, n in steps.items())}); "
            f"activation arena {plan.arena_bytes / 2**20:.2f} MiB (without reuse "
            f"{plan.memory['total_bytes'] / 2**20:.2f} MiB), weights {plan.weight_bytes / 2**20:.2f} MiB"
        )
    if args.report:
        if args.target == "cuda":
            from woodpecker.select.report import write_report

            write_report(args.report, {"model": str(args.model), **compiled.plan.selection})
            print(f"wrote the selection report {args.report}")
        else:
            write_selection_report(args.report, compiled, Path(args.model), options)
    if args.output:
        what = "plan" if args.target == "cuda" else "model"
        print(f"wrote the {what} {compiled.save(args.output)} (run it with woodpecker.load(DIR), no MLIR needed)")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `wpk compile`."""
    add_model_arguments(parser, model_help="ONNX file", required=True)
    parser.add_argument("--target", default="cpu", choices=["cpu", "cuda"], help="what to compile for (default cpu)")
    parser.add_argument("--arch", default="sm_90", help="CUDA architecture (target cuda; default sm_90)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        type=directory_path,
        help="write the model into DIR (cpu: model.so, weights, manifest; cuda: the plan, PTX, weights)",
    )
    add_selection_arguments(parser)
