"""`wpk compile`: compile a model, choosing each kernel's implementation; write a plan."""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

from woodpecker.cli.common import add_model_arguments, add_selection_arguments
from woodpecker.cli.run import write_selection_report
from woodpecker.database import DatabaseError


def _default_select(args: argparse.Namespace) -> str:
    """--select when not given: "measure", except for a CUDA plan on a machine without a GPU,
    where the stated heuristic chooses (and the command says so)."""
    if args.select is not None:
        return args.select
    if args.target != "cuda":
        return "measure"
    from woodpecker.runtime.cuda.launch import cuda_status
    from woodpecker.targets.cuda import CUDA_HEURISTIC

    reason = cuda_status()
    if reason is None:
        return "measure"
    print(f"no GPU here ({reason}): nothing is measured; generated kernels use their tuning records or default "
          f"configurations, and the heuristic chooses each kernel's implementation: {CUDA_HEURISTIC}")
    return "heuristic"


def cmd_compile(args: argparse.Namespace) -> int:
    import woodpecker

    shapes = dict(args.input_shape or [])
    select = _default_select(args)
    options = woodpecker.CompileOptions(
        target=args.target,
        opt_level=args.opt_level,
        use_tuning_records=not args.no_records,
        tuning_db=args.db,
        libraries=args.libraries,
        select=select,
        arch=args.arch,
    )
    start = time.perf_counter()
    try:
        compiled = woodpecker.compile(args.model, input_shapes=shapes or None, options=options)
    except DatabaseError as err:  # the tuning database (--db) cannot be read or written
        print(f"wpk compile: error: {err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    stats = compiled.stats
    print(f"compiled {args.model} for {args.target} in {seconds:.2f}s: {stats.num_kernels} kernels "
          f"({stats.tuned_kernels} with tuning records, {stats.library_kernels} library calls)")
    if compiled.selection:
        from woodpecker.select.report import format_table

        print(format_table(compiled.selection))
        heuristic = [c for c in compiled.selection if c.how == "heuristic"]
        if heuristic:
            from woodpecker.compiler import target_class

            rule = target_class(args.target).heuristic_text
            print(f"{len(heuristic)} kernel signatures chosen by the heuristic, not measured: {rule} "
                  "(--select measure measures them)")
    if args.target == "cuda":
        plan = compiled.plan
        steps = collections.Counter(s.impl for s in plan.steps)
        print(f"plan: {len(plan.steps)} steps ({', '.join(f'{n} {impl}' for impl, n in steps.items())}); "
              f"activation arena {plan.arena_bytes / 2**20:.2f} MiB (without reuse "
              f"{plan.memory['total_bytes'] / 2**20:.2f} MiB), weights {plan.weight_bytes / 2**20:.2f} MiB")
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
    parser.add_argument("--target", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--arch", default="sm_90", help="CUDA architecture (target cuda)")
    parser.add_argument("-o", "--output", metavar="DIR", help="write the model (cpu: model.so, weights, manifest)")
    add_selection_arguments(parser, None)

