#!/usr/bin/env python3
"""Where a CPU model's time goes: Woodpecker's per-kernel profile next to ONNX Runtime's per op type.

    python bench/profile_kernels.py [--models mobilenet_v2,resnet50] [--models-dir /work/models]
        [--threads 2] [--layout blocked] [--runs 30] [--rounds 3] [--no-ort] [--steps] [--json OUT.json]

Woodpecker: the model is compiled with `CpuOptions(profile=True)` (woodpecker.backend.profile: a
clock_gettime stamp after every top-level step of the code, ~20 ns each). Per step the median
over all timed runs; the steps are summed by kind:

    conv 1x1 / conv 3x3 / conv KxK / depthwise, each [library] (oneDNN) or [generated];
    reorder to_blocked / from_blocked (the layout's transposes); padding fill (the zero fill of a
    padded input) and copies (memref.copy: a padded input's interior, other strided copies);
    elementwise, pooling, reduction, matmul, the rest (a kernel's straight-line vector code counts
    with its kernel).

`in code` is the time between the first and the last stamp (the steps add up to it); `e2e` is
`CompiledModel.run` (Python checks of the feeds, the output and arena allocation, the call);
`bound` is the executable's bound call (arguments built once): e2e - in code is the framework's
overhead, bound - in code the part of it outside Python's `run`.

ONNX Runtime: `SessionOptions.enable_profiling` with the same thread count; the node events'
durations (µs) per run, summed per op type; its e2e median is timed without profiling in a second
session. Woodpecker and ORT blocks are interleaved (R rounds of N runs each, a pause between
blocks so the other's spinning threads sleep): on a loaded machine compare within a round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODELS = ("mobilenet_v2", "resnet50")
PAUSE_S = 0.5  # > KMP_BLOCKTIME (200 ms): the other engine's OpenMP threads are asleep


def kernel_class(info: Any) -> str:
    """The kind of a model kernel (woodpecker.backend.profile.KernelInfo) for the summary."""
    name = info.name
    if "depthwise" in name:
        return "depthwise"
    if "conv" in name:
        kh, kw = (info.filter_shape[2], info.filter_shape[3]) if len(info.filter_shape) >= 4 else (0, 0)
        return f"conv {kh}x{kw}" if (kh, kw) in ((1, 1), (3, 3)) else f"conv {kh}x{kw}" if kh else "conv"
    if info.transposes:
        source, result = info.transposes[0]
        # to_blocked: (N, CB, b, H, W) -> (N, CB, H, W, b); from_blocked: the other way.
        if len(source) == 5 and len(result) == 5:
            if result[-1] == source[2] and source[3:] == result[2:4]:
                return "reorder to_blocked"
            if result[2] == source[-1] and source[2:4] == result[3:]:
                return "reorder from_blocked"
        return "transpose"
    if any("pool" in op for op in info.named_ops):
        return "pooling"
    for kind in ("pool", "matmul", "reduction", "elementwise"):
        if kind in name:
            return "pooling" if kind == "pool" else kind
    return "other"


def step_class(step: Any, kernels: dict[str, Any]) -> str:
    """The summary row of one profiled step."""
    if step.step == "copy":
        return "copies (memref.copy)"
    info = kernels.get(step.kernel)
    base = kernel_class(info) if info is not None else "other"
    if step.step == "loops" and step.detail == "linalg.fill" and base.startswith(("conv", "depthwise", "pooling")):
        return "padding fill"  # a fill of its own loop nest: the zeros around a padded input
    if step.step == "library":
        return f"{base} [library]"
    if base.startswith(("conv", "depthwise")):
        return f"{base} [generated]"
    return base


def compile_woodpecker(path: Path, threads: int, layout: str) -> tuple[Any, dict[str, np.ndarray]]:
    import woodpecker
    from woodpecker.backend.cpu import CpuOptions

    options = woodpecker.CompileOptions(
        layout=layout, cpu=CpuOptions(parallel=threads > 1, threads=threads, profile=True)
    )
    model = woodpecker.compile(str(path), options=options)
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal(model.input_shapes[name]).astype(np.float32) for name in model.input_names}
    return model, feeds


def time_woodpecker(model: Any, feeds: dict[str, np.ndarray], runs: int, record: dict[str, list]) -> None:
    profile = model.executable.profile
    inputs = [feeds[name] for name in model.input_names]
    bound, _ = model.executable.bound_call(inputs)
    for _ in range(runs):
        start = time.perf_counter()
        model.run(None, feeds)
        e2e = time.perf_counter() - start
        stamps = profile.stamps_ns()
        record["e2e"].append(e2e)
        record["in_code"].append((stamps[-1] - stamps[0]) * 1e-9)
        record["overhead"].append(e2e - record["in_code"][-1])
        record["steps"].append(np.diff(stamps) * 1e-9)
    for _ in range(runs):
        start = time.perf_counter()
        bound()
        record["bound"].append(time.perf_counter() - start)


def ort_sessions(path: Path, threads: int, scratch: str) -> tuple[Any, Any]:
    import onnxruntime as ort

    def session(profile: bool) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if profile:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(scratch, path.stem)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    return session(False), session(True)


def time_ort(plain: Any, profiled: Any, feeds: dict[str, np.ndarray], runs: int, record: dict[str, list]) -> None:
    for _ in range(runs):
        start = time.perf_counter()
        plain.run(None, feeds)
        record["e2e"].append(time.perf_counter() - start)
    for _ in range(runs):
        profiled.run(None, feeds)
    record["profiled_runs"].append(runs)


def ort_by_op(profiled: Any, skip: int) -> dict[str, float]:
    """Seconds per run by op type from the ORT profile (its node `*_kernel_time` events), over the
    runs (`model_run` events) after the first `skip`."""
    events = json.loads(Path(profiled.end_profiling()).read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[skip:]
    if not runs:
        return {}
    totals: dict[str, float] = defaultdict(float)
    for event in events:
        node = event.get("cat") == "Node" and str(event.get("name", "")).endswith("_kernel_time")
        if node and any(start <= event["ts"] <= end for start, end in runs):
            totals[event["args"].get("op_name", "?")] += event["dur"] * 1e-6
    return {op: total / len(runs) for op, total in totals.items()}


def interleaved(blocks: list[Callable[[], None]], rounds: int) -> None:
    for _ in range(rounds):
        for block in blocks:
            block()
            time.sleep(PAUSE_S)


def table(rows: list[tuple], header: tuple) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summarize(model: str, steps: list[Any], kernels: dict[str, Any], record: dict[str, list]) -> dict[str, Any]:
    per_step = np.median(np.stack(record["steps"]), axis=0)
    groups: dict[str, list[float]] = defaultdict(list)
    for step, seconds in zip(steps, per_step, strict=True):
        groups[step_class(step, kernels)].append(float(seconds))
    in_code = statistics.median(record["in_code"])
    e2e = statistics.median(record["e2e"])
    bound = statistics.median(record["bound"])
    overhead = statistics.median(record["overhead"])
    return {
        "model": model,
        "steps": len(steps),
        "groups": {name: {"count": len(v), "ms": sum(v) * 1e3} for name, v in groups.items()},
        "sum_of_step_medians_ms": float(per_step.sum()) * 1e3,
        "in_code_ms": in_code * 1e3,
        "bound_ms": bound * 1e3,
        "e2e_ms": e2e * 1e3,
        "overhead_ms": overhead * 1e3,
        "per_step_ms": [
            {"kernel": s.kernel, "detail": s.detail, "step": s.step, "callee": s.callee, "ms": float(t) * 1e3}
            for s, t in zip(steps, per_step, strict=True)
        ],
    }


def print_summary(summary: dict[str, Any], ort: dict[str, Any] | None, show_steps: bool) -> None:
    e2e = summary["e2e_ms"]
    rows = sorted(summary["groups"].items(), key=lambda item: -item[1]["ms"])
    print(f"\n== {summary['model']}: woodpecker, {summary['steps']} timed steps (median per step over all runs)")
    print(
        table(
            [(k, v["count"], f"{v['ms']:.3f}", f"{100 * v['ms'] / e2e:.1f}%") for k, v in rows],
            ("kind", "steps", "ms", "of e2e"),
        )
    )
    print(
        f"medians: sum of the steps' {summary['sum_of_step_medians_ms']:.3f} ms; "
        f"in code {summary['in_code_ms']:.3f} ms; "
        f"bound call {summary['bound_ms']:.3f} ms; CompiledModel.run {e2e:.3f} ms; "
        f"framework overhead (run - in code, per run) {summary['overhead_ms']:.3f} ms"
    )
    if show_steps:
        print(
            table(
                [(s["kernel"], s["detail"], s["step"], s["callee"], f"{s['ms']:.3f}") for s in summary["per_step_ms"]],
                ("kernel", "detail", "step", "callee", "ms"),
            )
        )
    if ort is not None:
        ops = sorted(ort["by_op"].items(), key=lambda item: -item[1])
        total = sum(ort["by_op"].values())
        print(f"\n== {summary['model']}: onnxruntime, per op type (profiled session, per run)")
        print(
            table([(op, f"{s * 1e3:.3f}", f"{100 * s / total:.1f}%") for op, s in ops], ("op type", "ms", "of nodes"))
        )
        print(
            f"sum of nodes {total * 1e3:.3f} ms; run (unprofiled session, median) {ort['e2e_ms']:.3f} ms; "
            f"overhead {ort['e2e_ms'] - total * 1e3:.3f} ms"
        )


def _woodpecker_block(model: Any, feeds: dict[str, np.ndarray], runs: int, record: dict) -> Callable[[], None]:
    return lambda: time_woodpecker(model, feeds, runs, record)


def _ort_block(plain: Any, profiled: Any, feeds: dict[str, np.ndarray], runs: int, record: dict) -> Callable[[], None]:
    return lambda: time_ort(plain, profiled, feeds, runs, record)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--models-dir", default=os.environ.get("WPK_MODELS_DIR", "/work/models"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layout", default="blocked", choices=("auto", "nchw", "blocked"))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-ort", action="store_true")
    parser.add_argument("--steps", action="store_true", help="print every step's time too")
    parser.add_argument("--json", help="write the summaries here")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="wpk-profile-") as scratch:
        for name in args.models.split(","):
            path = Path(args.models_dir) / f"{name}.onnx"
            model, feeds = compile_woodpecker(path, args.threads, args.layout)
            profile = model.executable.profile
            record: dict[str, list] = defaultdict(list)
            ort_record: dict[str, list] = defaultdict(list)
            for _ in range(args.warmup):
                model.run(None, feeds)
            blocks = [_woodpecker_block(model, feeds, args.runs, record)]
            plain = profiled = None
            if not args.no_ort:
                plain, profiled = ort_sessions(path, args.threads, scratch)
                for _ in range(args.warmup):
                    plain.run(None, feeds)
                    profiled.run(None, feeds)
                blocks.append(_ort_block(plain, profiled, feeds, args.runs, ort_record))
            interleaved(blocks, args.rounds)
            summary = summarize(name, profile.steps, profile.kernels, record)
            ort = None
            if profiled is not None:
                ort = {"by_op": ort_by_op(profiled, args.warmup), "e2e_ms": statistics.median(ort_record["e2e"]) * 1e3}
                summary["onnxruntime"] = ort
            print_summary(summary, ort, args.steps)
            results.append(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
