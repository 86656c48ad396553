"""Per layer: the generated blocked (NCHW16c) convolution kernel against oneDNN on the same layout.

    OMP_NUM_THREADS=2 python bench/bench_blocked_convs.py [--model /work/models/resnet50.onnx]
        [--trials 8] [--rounds 5] [--block 16] [--limit N] [--json OUT.json]

For each distinct convolution of the model (shapes, kernel, strides, pads, groups; channel counts
rounded up to a block multiple, as the layout pass pads them), with a bias and a relu epilogue:

* `default`: the generated kernel (lowering/blocked_conv.py, template cpu.blocked_conv) with the
  template's default configuration;
* `tuned` (with --trials > 0): the best of a small search by the tuner (woodpecker.tune, genetic
  sampler, `--trials` trials per layer, the isolated CPU runner, a temporary database), with
  `parallel` fixed to the default's (2 threads, as oneDNN);
* `onednn`: oneDNN's convolution primitive created with `format_tag_any` (its blocked layout:
  nChw16c / OIhw16i16o on AVX-512), the bias and a relu post-op; only the convolution primitive is
  timed (the reorders into and out of its layout are not).

All kernels run with 2 threads (OMP_NUM_THREADS=2, KMP_BLOCKTIME=0). Each round times a block of
every candidate in turn (interleaved); a layer's time is the median over rounds of the block
medians, as wall time and as CPU time of all threads / 2 (in parentheses: on a loaded machine
the wall time mostly measures the other jobs; the CPU time does not see a descheduled thread, nor
a load imbalance between the two). Before timing, every output is compared with the float64
numpy reference (rtol 1e-4 of the output's largest magnitude). The table gives the times,
onednn / best generated (> 1: generated faster) and the fraction of layers where it wins.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP workers sleep at once instead of spinning: the CPU time of a call is then its work
# (both kernels run on the same libiomp5), a measure the other jobs of a shared machine disturb less.
os.environ.setdefault("KMP_BLOCKTIME", "0")

import numpy as np
import onnx
from mlir import ir

from woodpecker.backend.cpu import CpuOptions, compile_cpu
from woodpecker.dialect import create_context
from woodpecker.kernels.space import Knob, SearchSpace
from woodpecker.measure.cpu_runner import CpuMeasureOptions, IsolatedCpuRunner
from woodpecker.ops.layout import from_blocked
from woodpecker.runtime.cpu import onednn
from woodpecker.schedule.blocked_conv_task import (
    BlockedConvCase,
    blocked_arrays,
    reference,
    task_of,
)

THREADS = 2
RTOL = 1e-4


@dataclass
class Layer:
    case: BlockedConvCase
    count: int  # how many convolutions of the model have this shape
    names: list[str] = field(default_factory=list)


def model_convs(path: Path, block: int) -> list[Layer]:
    """The distinct convolutions of an ONNX model (shapes from ONNX shape inference)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {}
    for info in [*model.graph.input, *model.graph.value_info]:
        dims = [d.dim_value for d in info.type.tensor_type.shape.dim]
        shapes[info.name] = [d if d > 0 else 1 for d in dims]
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    layers: dict[BlockedConvCase, Layer] = {}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        n, c, h, w = shapes[node.input[0]]
        o, _, kh, kw = weights[node.input[1]]
        groups = int(attrs.get("group", 1))
        pads = tuple(int(p) for p in attrs.get("pads", (0, 0, 0, 0)))
        depthwise = groups > 1 and groups == c == o

        def up(value: int) -> int:
            return -(-value // block) * block

        case = BlockedConvCase(
            channels=up(c),
            filters=up(o),
            size=(h, w),
            kernel=(kh, kw),
            strides=tuple(attrs.get("strides", (1, 1))),
            pads=(pads[0], pads[1], pads[2], pads[3]),
            dilations=tuple(attrs.get("dilations", (1, 1))),
            groups=up(c) if depthwise else groups,
            block=block,
            bias=True,
            epilogue="relu",
            batch=n,
        )
        layer = layers.setdefault(case, Layer(case, 0))
        layer.count += 1
        layer.names.append(node.name)
    return list(layers.values())


def check(name: str, output: np.ndarray, expected: np.ndarray) -> str:
    scale = float(np.max(np.abs(expected))) or 1.0
    worst = float(np.max(np.abs(output - expected)))
    if worst > RTOL * scale:
        return f"{name}: WRONG (max |diff| {worst:.3g}, scale {scale:.3g})"
    return ""


def generated(
    case: BlockedConvCase, config: dict, args: list[np.ndarray]
) -> tuple[Callable[[], None], np.ndarray, list]:
    task = task_of(case)
    split = len(args) - task.num_weights
    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(task.module_text)
        options = CpuOptions(threads=THREADS, schedules={task.kernel_name: config})
        executable = compile_cpu(module, options, num_weights=task.num_weights, weights=args[split:])
    executable.bind_weights(args[split:])
    call, outputs = executable.bound_call(args[:split])
    call()
    applied = [s.config for s in executable.schedules if s.kernel.kind.startswith("blocked")]
    return call, outputs[0], [executable, outputs, applied]


def onednn_conv(case: BlockedConvCase, arrays) -> tuple[Callable[[], None], np.ndarray, list]:
    top, left, bottom, right = case.pads
    conv = onednn.Convolution(
        (case.batch, case.channels, *case.size),
        arrays.w,
        arrays.bias,
        case.strides,
        (top, left),
        (bottom, right),
        case.dilations,
        case.groups,
        [onednn.PostOp("eltwise", "relu")],
        layout="blocked",
    )
    out = np.empty(conv.output_shape, np.float32)
    conv(np.ascontiguousarray(arrays.x), out)  # once with the reorders: sets the blocked memories up
    lib = onednn.load()
    execution = conv.conv_execution

    def call() -> None:
        lib.call("dnnl_primitive_execute", execution.primitive, conv.stream, execution.nargs, execution.args)
        lib.call("dnnl_stream_wait", conv.stream)

    return call, out, [conv, out]


def pin_parallel(space: SearchSpace) -> SearchSpace:
    """The space with `parallel` fixed to its default: on a loaded machine the tuner's wall times
    favour serial code (no thread to wait for), which is twice as slow on a quiet one; the table
    compares 2-thread kernels."""
    knobs = tuple(Knob(k.name, (space.default[k.name],), k.doc) if k.name == "parallel" else k for k in space.knobs)
    return dataclasses.replace(space, knobs=knobs)


def tune(case: BlockedConvCase, trials: int, storage: str) -> dict:
    from woodpecker.tune.tuner import TuneOptions, tune_tasks

    task = task_of(case)
    arrays = blocked_arrays(case)
    split = len(arrays.args) - task.num_weights
    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(task.module_text)
        executable = compile_cpu(module, CpuOptions(threads=THREADS), task.num_weights, arrays.args[split:])
    space = pin_parallel(next(s.space for s in executable.schedules if s.kernel.kind.startswith("blocked")))
    runner = IsolatedCpuRunner(CpuMeasureOptions(threads=THREADS, rtol=1e-4))  # a crashing candidate fails alone
    options = TuneOptions(trials=trials, strategy="ga", seed=0, storage=storage, confirm_top=2, confirm_rounds=2)
    try:
        (result,) = tune_tasks([(task, space)], runner, options)
    finally:
        runner.close()
    return dict(result.best_config or {})


def time_block(call: Callable[[], None], min_seconds: float = 0.03, repeat: int = 5) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (all threads) per call of one block."""
    call()
    wall: list[float] = []
    cpu: list[float] = []
    while len(wall) < repeat or (sum(wall) < min_seconds and len(wall) < 200):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def summary(rows: list[dict], key: str) -> str:
    wins = sum(1 for r in rows if r[f"ratio_{key}"] > 1.0)
    weighted = sum(r["count"] for r in rows if r[f"ratio_{key}"] > 1.0) / max(1, sum(r["count"] for r in rows))
    total = {name: sum(r[key][name] * r["count"] for r in rows) for name in rows[0][key]} if rows else {}
    return (
        f"{key}: generated wins {wins}/{len(rows)} distinct layers ({weighted:.0%} of the model's convolutions); "
        "model total ms (x count): " + ", ".join(f"{k} {v:.2f}" for k, v in total.items())
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=Path, default=Path(os.environ.get("WPK_MODELS_DIR", "/work/models")) / "resnet50.onnx"
    )
    parser.add_argument("--block", type=int, default=16)
    parser.add_argument("--trials", type=int, default=0, help="tuner trials per layer (0: no tuned column)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="only the first N distinct layers")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    onednn.set_threads(THREADS)
    layers = model_convs(args.model, args.block)
    if args.limit:
        layers = layers[: args.limit]
    storage = str(Path(tempfile.mkdtemp(prefix="bconv-tune-")) / "records.db")
    print(f"{args.model.name}: {len(layers)} distinct convolutions, block {args.block}, {THREADS} threads", flush=True)
    rows = []
    for layer in layers:
        case = layer.case
        arrays = blocked_arrays(case)
        expected = reference(case, arrays)
        candidates: dict[str, tuple[Callable[[], None], list]] = {}
        problems = []
        call, out, keep = generated(case, {}, arrays.args)
        problems.append(check("default", out, expected))
        candidates["default"] = (call, keep)
        default_config = keep[2][0] if keep[2] else {}
        tuned_config = None
        if args.trials:
            tuned_config = tune(case, args.trials, storage)
            call, out, keep = generated(case, tuned_config, arrays.args)
            problems.append(check("tuned", out, expected))
            candidates["tuned"] = (call, keep)
        call, out, keep = onednn_conv(case, arrays)
        problems.append(check("onednn", out, from_blocked(expected, case.filters)))
        candidates["onednn"] = (call, keep)
        wall: dict[str, list[float]] = {name: [] for name in candidates}
        cpu: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.rounds):
            for name, (call, _) in candidates.items():
                block_wall, block_cpu = time_block(call)
                wall[name].append(block_wall)
                cpu[name].append(block_cpu)
        ms = {name: statistics.median(t) * 1e3 for name, t in wall.items()}
        cpu_ms = {name: statistics.median(t) * 1e3 / THREADS for name, t in cpu.items()}
        row = {
            "layer": case.describe(),
            "count": layer.count,
            "gflop": case.flops / 1e9,
            "ms": ms,
            "cpu_ms": cpu_ms,
            "ratio_ms": ms["onednn"] / min(ms[n] for n in ms if n != "onednn"),
            "ratio_cpu_ms": cpu_ms["onednn"] / min(cpu_ms[n] for n in cpu_ms if n != "onednn"),
            "impl": keep[0].name,
            "default_config": default_config,
            "tuned_config": tuned_config,
            "problems": [p for p in problems if p],
        }
        rows.append(row)
        cells = "  ".join(f"{name} {ms[name]:7.3f} ({cpu_ms[name]:7.3f})" for name in ms)
        print(
            f"{row['layer']:<28} x{layer.count:<2} {cells}  onednn/generated {row['ratio_ms']:.2f} "
            f"({row['ratio_cpu_ms']:.2f})  [{row['impl']}]"
            + ("  " + "; ".join(row["problems"]) if row["problems"] else ""),
            flush=True,
        )
    print(summary(rows, "ms"))
    print(summary(rows, "cpu_ms"))
    if args.json:
        args.json.write_text(json.dumps({"model": args.model.name, "threads": THREADS, "rows": rows}, indent=1))
    failed = any(r["problems"] for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
