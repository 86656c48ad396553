"""`wpk`: compile an ONNX model, run it, and compare it with ONNX Runtime.

    wpk run [MODEL.onnx] [--input-shape NAME=1x3x224x224] [--repeat N] [--opt-level N]
            [--libraries all|none|onednn|blas] [--select records|measure|heuristic]
    wpk compile MODEL.onnx [--target cpu|cuda] [--libraries ...] [--select ...] [--report FILE] [-o DIR]

Without MODEL, `wpk run` runs the bundled tiny ResNet.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from woodpecker.errors import WoodpeckerError


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """'data=1x3x224x224' -> ('data', (1, 3, 224, 224))."""
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        shape = tuple(int(d) for d in dims.lower().split("x"))
        if any(d <= 0 for d in shape):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad --input-shape '{text}': expected NAME=DxDx..., e.g. data=1x3x224x224"
        ) from None
    return name, shape


@dataclass
class Timing:
    median_ms: float
    min_ms: float


def time_calls(fn: Callable[[], object], repeat: int, warmup: int = 2) -> Timing:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return Timing(statistics.median(samples), min(samples))


def _summarize(array: np.ndarray) -> str:
    flat = array.reshape(-1)
    head = np.array2string(flat[:8], precision=5, separator=", ")
    text = f"shape {tuple(array.shape)}, first values {head}"
    if array.ndim == 2 and array.shape[0] == 1 and array.shape[1] > 1:
        top = np.argsort(flat)[::-1][:3]
        text += ", top-3 classes " + ", ".join(f"{i} ({flat[i]:.4f})" for i in top)
    return text


def cmd_run(args: argparse.Namespace) -> int:
    import woodpecker
    from woodpecker.compiler import random_feeds

    model_path = Path(args.model) if args.model else _bundled_model()
    shapes = dict(args.input_shape or [])
    print(f"model: {model_path}")
    options = woodpecker.CompileOptions(opt_level=args.opt_level, use_tuning_records=not args.no_records,
                                        tuning_db=args.db, libraries=args.libraries, select=args.select)
    if args.schedule:
        from woodpecker.schedule.schedule_pass import load_request

        request = load_request(args.schedule)
        if request.target != "cpu":
            raise woodpecker.WoodpeckerError(f"{args.schedule}: 'wpk run' runs on the cpu, not {request.target}")
        options.cpu.schedules = request.kernels
    start = time.perf_counter()
    compiled = woodpecker.compile(model_path, input_shapes=shapes or None, options=options)
    compile_s = time.perf_counter() - start
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in compiled.stats.stage_seconds.items())
    stats = compiled.stats
    print(f"compiled for cpu at O{args.opt_level} in {compile_s:.2f}s ({stages}); "
          f"{stats.num_ops_before} ops -> {stats.num_kernels} kernels "
          f"({stats.tuned_kernels} with tuning records, {stats.library_kernels} library calls); "
          f"{'OpenMP on all cores' if compiled.stats.parallel else 'one core'}")
    if args.report:
        _write_selection_report(args.report, compiled, model_path, options)
    feeds = random_feeds(compiled, seed=args.seed)
    outputs = compiled.run(None, feeds)
    for name, value in zip(compiled.output_names, outputs, strict=True):
        print(f"output '{name}': {_summarize(value)}")
    ours = time_calls(lambda: compiled.run(None, feeds), args.repeat)
    print(f"woodpecker latency: median {ours.median_ms:.3f} ms (min {ours.min_ms:.3f} ms, {args.repeat} runs)")
    if args.no_compare:
        return 0
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: skipping the comparison (pip install 'woodpecker[ref]')")
        return 0
    session = ort.InferenceSession(_model_bytes(model_path, shapes), providers=["CPUExecutionProvider"])
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


def _write_selection_report(path: str, compiled, model_path: Path, options) -> None:
    from woodpecker.backend.cpu import thread_count
    from woodpecker.select.report import selection_report, write_report
    from woodpecker.tune.extract import cpu_device

    report = selection_report(
        compiled.selection,
        model=str(model_path),
        target="cpu",
        libraries=options.libraries,
        select=options.select,
        device=cpu_device(thread_count(options.cpu.threads, options.cpu.parallel)),
    )
    write_report(path, report)
    print(f"wrote the selection report {path}")



def _default_select(args: argparse.Namespace) -> str:
    """--select when not given: "measure", except for a CUDA plan on a machine without a GPU,
    where the stated heuristic chooses (and the command says so)."""
    if args.select is not None:
        return args.select
    if args.target != "cuda":
        return "measure"
    from woodpecker.gpu.launch import cuda_status
    from woodpecker.select.cuda_plan import CUDA_HEURISTIC

    reason = cuda_status()
    if reason is None:
        return "measure"
    print(f"no GPU here ({reason}): nothing is measured; generated kernels use their tuning records or default "
          f"configurations, and the heuristic chooses each kernel's implementation: {CUDA_HEURISTIC}")
    return "heuristic"


def cmd_compile(args: argparse.Namespace) -> int:
    import woodpecker

    shapes = dict(args.input_shape or [])
    if args.output and args.target != "cuda":
        raise woodpecker.WoodpeckerError("-o saves CUDA plans; a CPU model is compiled in memory (use --report)")
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
    compiled = woodpecker.compile(args.model, input_shapes=shapes or None, options=options)
    seconds = time.perf_counter() - start
    stats = compiled.stats
    print(f"compiled {args.model} for {args.target} in {seconds:.2f}s: {stats.num_kernels} kernels "
          f"({stats.tuned_kernels} with tuning records, {stats.library_kernels} library calls)")
    if compiled.selection:
        from woodpecker.select.report import format_table

        print(format_table(compiled.selection))
        heuristic = [c for c in compiled.selection if c.how == "heuristic"]
        if heuristic:
            if args.target == "cuda":
                from woodpecker.select.cuda_plan import CUDA_HEURISTIC as HEURISTIC
            else:
                from woodpecker.select.selection import HEURISTIC
            print(f"{len(heuristic)} kernel signatures chosen by the heuristic, not measured: {HEURISTIC} "
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
            _write_selection_report(args.report, compiled, Path(args.model), options)
    if args.output:
        print(f"wrote the plan {compiled.save(args.output)} (run it with woodpecker.load(DIR), no MLIR needed)")
    return 0


def _add_model_arguments(parser: argparse.ArgumentParser, model_help: str, required: bool = False) -> None:
    """The model, its input shapes, the opt level and the records: shared by `run` and `compile`."""
    parser.add_argument("model", nargs=None if required else "?", help=model_help)
    parser.add_argument("--input-shape", action="append", type=parse_input_shape, metavar="NAME=DxD...",
                        help="static shape for an input with symbolic dimensions (repeatable)")
    parser.add_argument("--opt-level", type=int, default=2, choices=[0, 1, 2])
    parser.add_argument("--db", metavar="URL",
                        help="tuning and selection records (default ~/.cache/woodpecker/tuning.db)")
    parser.add_argument("--no-records", action="store_true", help="ignore tuning records: default schedules")


def _add_selection_arguments(parser: argparse.ArgumentParser, select_default: str | None) -> None:
    parser.add_argument("--libraries", default="all", metavar="all|none|onednn|blas|cudnn|cublas",
                        help="vendor libraries whose kernels compete with generated ones (comma-separated; "
                             "default all: onednn,blas on the CPU, cudnn,cublas for CUDA)")
    default = select_default or "measure; for CUDA without a GPU, heuristic"
    parser.add_argument("--select", default=select_default, choices=["records", "measure", "heuristic"],
                        help="how each kernel's implementation is chosen: recorded measurements (else the "
                             "heuristic), measure what is not recorded, or the heuristic only "
                             f"(default {default})")
    parser.add_argument("--report", metavar="FILE", help="write the per-kernel selection report (JSON)")


def _bundled_model() -> Path:
    from woodpecker.models import bundled_model_path

    return bundled_model_path()


def _model_bytes(path: Path, shapes: dict[str, tuple[int, ...]]) -> bytes:
    """The model as onnxruntime should see it, with the same input shape overrides."""
    import onnx

    model = onnx.load(str(path))
    for value in model.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name], strict=True):
                dim.Clear()
                dim.dim_value = size
    return model.SerializeToString()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wpk", description="Woodpecker inference compiler")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="compile a model for the CPU, run it, compare with onnxruntime")
    _add_model_arguments(run, model_help="ONNX file (default: the bundled tiny ResNet)")
    run.add_argument("--schedule", metavar="FILE",
                     help="schedule configurations (JSON, as for wpk-opt --wpk-apply-schedule)")
    run.add_argument("--repeat", type=int, default=20, help="timed runs (median reported)")
    run.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    run.add_argument("--no-compare", action="store_true", help="do not run onnxruntime")
    _add_selection_arguments(run, "records")
    run.set_defaults(func=cmd_run)

    comp = sub.add_parser("compile", help="compile a model, choosing each kernel's implementation; "
                                          "--target cuda -o DIR writes a deployable plan")
    _add_model_arguments(comp, model_help="ONNX file", required=True)
    comp.add_argument("--target", default="cpu", choices=["cpu", "cuda"])
    comp.add_argument("--arch", default="sm_90", help="CUDA architecture (target cuda)")
    comp.add_argument("-o", "--output", metavar="DIR", help="target cuda: write the plan (plan.json, PTX, weights)")
    _add_selection_arguments(comp, None)
    comp.set_defaults(func=cmd_compile)

    from woodpecker.tune import cli as tune_cli
    from woodpecker.tune import report

    tune = sub.add_parser("tune", help="auto-tune the schedule of every kernel of a model (Optuna, GA)")
    tune_cli.add_arguments(tune)
    tune.set_defaults(func=tune_cli.cmd_tune)
    tune_report = sub.add_parser("tune-report", help="plots (PNG) and tables (CSV) of the tuning records")
    report.add_arguments(tune_report)
    tune_report.set_defaults(func=report.run)
    from woodpecker.tune import batch

    measure = sub.add_parser("measure", help="measure exported CUDA candidates on this GPU host (no MLIR needed)")
    batch.add_arguments(measure)
    measure.set_defaults(func=batch.run_measure)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["measure"]:  # on a GPU host that may have no MLIR: import nothing else
        from woodpecker.tune import batch

        return batch.main(argv[1:])
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
