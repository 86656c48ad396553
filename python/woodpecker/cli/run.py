"""`wpk run`: compile a model for the CPU, run it, and compare it with ONNX Runtime.

The inputs come from `--input NAME=@x.npy` / `--inputs feeds.npz` (checked against the model's
inputs before anything is compiled), the others are random (float32, `--seed`); `--output`
writes the outputs. Every check of the arguments happens before the compile, so a mistake
costs no compile time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from woodpecker.cli.arrays import Feed, check_writable_names, load_feeds, output_path, parse_input_file, write_outputs
from woodpecker.cli.common import (
    add_model_arguments,
    add_selection_arguments,
    apply_shape_options,
    bundled_model,
    mib,
    records_use,
    set_input_shapes,
    static_shapes,
    summarize,
    time_calls,
)
from woodpecker.cli.compare import compare, tolerance_text
from woodpecker.cli.parsing import non_negative_int, positive_int
from woodpecker.errors import WoodpeckerError
from woodpecker.runtime.feeds import InputSpec

RTOL = 1e-4
ATOL = 1e-5

__all__ = ["add_arguments", "cmd_run", "records_use", "write_selection_report"]


class ReferenceMismatch(WoodpeckerError):
    """Woodpecker's outputs differ from ONNX Runtime's beyond the tolerance."""


def cmd_run(args: argparse.Namespace) -> int:
    import woodpecker
    from woodpecker.importer.loader import declared_inputs, read_model

    model_path = Path(args.model) if args.model else bundled_model()
    print(f"model: {model_path}")
    proto = read_model(model_path)
    declared = declared_inputs(proto)
    specs = apply_shape_options(declared, args.input_shape)
    if args.output is not None:
        check_writable_names(args.output, [value.name for value in proto.graph.output])
    files = load_feeds(args.input or [], args.inputs, specs)
    shapes = static_shapes(specs) | {name: tuple(feed.array.shape) for name, feed in files.items()}
    options = woodpecker.CompileOptions(
        opt_level=args.opt_level,
        use_tuning_records=not args.no_records,
        tuning_db=args.db,
        libraries=args.libraries,
        select=args.select,
        layout=args.layout,
    )
    if args.schedule:
        from woodpecker.targets.schedule_pass import load_request

        request = load_request(args.schedule)
        if request.target != "cpu":
            raise woodpecker.WoodpeckerError(f"{args.schedule}: 'wpk run' runs on the cpu, not {request.target}")
        options.cpu.schedules = request.kernels
    start = time.perf_counter()
    compiled = woodpecker.compile(proto, input_shapes=_overrides(declared, shapes), options=options)
    compile_s = time.perf_counter() - start
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in compiled.stats.stage_seconds.items())
    stats = compiled.stats
    print(
        f"compiled for cpu at O{args.opt_level} in {compile_s:.2f}s ({stages}); "
        f"{stats.num_ops_before} ops -> {stats.num_kernels} kernels "
        f"({stats.tuned_kernels} with tuning records, {stats.library_kernels} library calls); "
        f"{'OpenMP on all cores' if compiled.stats.parallel else 'one core'}; layout: {stats.layout}"
    )
    if args.report:
        write_selection_report(args.report, compiled, model_path, options)
    print(memory_estimate(compiled, compare_with_reference=not args.no_compare))
    feeds = _feeds(compiled, files, args.seed)
    outputs = compiled.run(None, feeds)
    for name, value in zip(compiled.output_names, outputs, strict=True):
        print(f"output '{name}': {summarize(value)}")
    if args.output is not None:
        written = write_outputs(args.output, dict(zip(compiled.output_names, outputs, strict=True)))
        print(f"wrote the outputs to {', '.join(str(p) for p in written)}")
    ours = time_calls(lambda: compiled.run(None, feeds), args.repeat)
    print(f"woodpecker latency: median {ours.median_ms:.3f} ms (min {ours.min_ms:.3f} ms, {args.repeat} runs)")
    if args.no_compare:
        return 0
    return _compare_with_onnxruntime(proto, compiled, feeds, outputs, args.repeat, ours.median_ms)


def _overrides(specs: list[InputSpec], shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]] | None:
    """The input shapes compile needs to be told: those of inputs with open dimensions."""
    open_inputs = {s.name for s in specs if not all(isinstance(d, int) for d in s.shape)}
    given = {name: shape for name, shape in shapes.items() if name in open_inputs}
    return given or None


def _feeds(compiled, files: dict[str, Feed], seed: int) -> dict[str, np.ndarray]:
    """The feeds: the arrays read from files, random ones for the other inputs (float32 normal,
    integers and bools 0 or 1)."""
    from woodpecker.compiler import random_feeds

    missing = [name for name in compiled.input_names if name not in files]
    feeds = random_feeds(compiled, seed=seed, names=missing)
    for name in compiled.input_names:
        if name in files:
            feed = files[name]
            print(f"input '{name}': {feed.source}, shape {tuple(feed.array.shape)}")
        else:
            dtype = np.dtype(compiled.input_dtypes.get(name, np.float32))
            what = "random normal (float32" if dtype == np.float32 else f"random 0 or 1 ({dtype}"
            print(f"input '{name}': {what}, seed {seed}), shape {compiled.input_shapes[name]}")
    return {name: files[name].array if name in files else feeds[name] for name in compiled.input_names}


def memory_estimate(compiled, compare_with_reference: bool) -> str:
    """One line: the bytes of the inputs, outputs and weights, and the peak activation memory
    (the planner's number, `CompileStats.peak_activation_bytes`, inputs and outputs included)."""
    def nbytes(shapes: dict, dtypes: dict) -> int:
        return sum(int(np.prod(s)) * np.dtype(dtypes.get(n, np.float32)).itemsize for n, s in shapes.items())

    inputs = nbytes(compiled.input_shapes, compiled.input_dtypes)
    outputs = nbytes(compiled.output_shapes, compiled.output_dtypes)
    weights = compiled.executable.weight_bytes
    total = inputs + outputs + weights
    line = (
        f"memory estimate: inputs {mib(inputs)} + outputs {mib(outputs)} + weights {mib(weights)} = {mib(total)}, "
        f"plus the activations: peak activation memory {mib(compiled.stats.peak_activation_bytes)} "
        "(inputs and outputs included)"
    )
    if compare_with_reference:
        line += "; onnxruntime adds its own weights, activations and outputs"
    return line


def _compare_with_onnxruntime(proto, compiled, feeds, outputs, repeat: int, ours_ms: float) -> int:
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: skipping the comparison (pip install 'woodpecker[ref]')")
        return 0
    from woodpecker.importer.loader import first_line

    set_input_shapes(proto, compiled.input_shapes)
    try:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        expected = session.run(None, feeds)
    except Exception as err:  # onnxruntime's own exception types, whatever it refuses
        print(f"reference: ONNX Runtime refused the model: {first_line(err)}")
        return 0
    differ = []
    for name, got, ref in zip(compiled.output_names, outputs, expected, strict=True):
        agreement = compare(got, np.asarray(ref), RTOL, ATOL)
        print(f"agreement with onnxruntime on '{name}': {agreement.text()}")
        if not agreement.ok:
            differ.append(name)
    theirs = time_calls(lambda: session.run(None, feeds), repeat)
    print(f"onnxruntime latency: median {theirs.median_ms:.3f} ms (min {theirs.min_ms:.3f} ms)")
    print(f"latency ratio woodpecker/onnxruntime: {ours_ms / theirs.median_ms:.2f}x")
    if differ:
        raise ReferenceMismatch(
            f"output{'s' if len(differ) > 1 else ''} {', '.join(repr(n) for n in differ)} differ"
            f"{'' if len(differ) > 1 else 's'} from onnxruntime beyond rtol={tolerance_text(RTOL)}, "
            f"atol={tolerance_text(ATOL)}"
        )
    return 0


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
        layout=compiled.stats.layout,
    )
    write_report(path, report)
    print(f"wrote the selection report {path}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `wpk run`."""
    add_model_arguments(parser, model_help="ONNX file (default: the bundled tiny ResNet)")
    parser.add_argument(
        "--input",
        action="append",
        type=parse_input_file,
        metavar="NAME=@FILE.npy",
        help="feed the input NAME the array in FILE.npy (repeatable; the other inputs are random)",
    )
    parser.add_argument(
        "--inputs", type=Path, metavar="FEEDS.npz", help="feed the inputs the arrays of FEEDS.npz, by input name"
    )
    parser.add_argument(
        "--output",
        type=output_path,
        metavar="DIR|FILE.npz",
        help="write the outputs: NAME.npy per output in DIR, or one FILE.npz archive",
    )
    parser.add_argument(
        "--schedule", metavar="FILE", help="schedule configurations (JSON, as for wpk-opt --wpk-apply-schedule)"
    )
    parser.add_argument("--repeat", type=positive_int, default=20, help="timed runs (median reported; default 20)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--no-compare", action="store_true", help="do not run onnxruntime")
    add_selection_arguments(parser)
