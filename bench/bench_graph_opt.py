#!/usr/bin/env python3
"""Graph optimization: ops before and kernels after at O2, CPU latency at O0 and O2, ONNX Runtime.

For the test CNN (the bundled tiny_resnet, 1x3x64x64) and each real model present in the models
directory (resnet18, resnet50, mobilenet_v2 from tools/export_torchvision_models.py; missing ones
are listed and skipped), all measured in this one run on this machine:

  ONNX ops     graph nodes other than Constant/Identity
  wpk ops      `wpk` ops after import (before graph optimization)
  kernels O2   `wpk` ops after O2 (each one kernel)
  O0, O2, ORT  median latency in ms, each measured in its own block after warm-up (Woodpecker on
               all cores; onnxruntime CPU provider, default threads)
  O0/O2        speedup from graph optimization; O2/ORT: Woodpecker at O2 relative to onnxruntime

    python bench/bench_graph_opt.py [--models-dir DIR] [--repeat 10] [--repeat-large 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

import woodpecker
from woodpecker.cli.common import time_calls
from woodpecker.models import bundled_model_path

REPO = Path(__file__).resolve().parents[1]
REAL_MODELS = ("resnet18", "resnet50", "mobilenet_v2")
NOT_KERNELS = {"Constant", "Identity"}


@dataclass
class Row:
    name: str
    onnx_ops: int
    wpk_ops: int
    ops_o2: int  # wpk ops after graph optimization
    kernels_o2: int  # model kernels (views such as flatten are not kernels)
    o0_ms: float
    o2_ms: float
    ort_ms: float
    max_diff: float
    compile_o0_s: float
    compile_o2_s: float


def median_ms(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median latency of each function, measured one function at a time.

    Not interleaved: Woodpecker's OpenMP threads and onnxruntime's thread pool both spin-wait
    for a while after each run, so alternating them makes each steal the other's cores.
    """
    return {name: time_calls(fn, repeat).median_ms for name, fn in fns.items()}


def measure(name: str, path: Path, repeat: int) -> Row:
    model = onnx.load(str(path))
    onnx_ops = sum(1 for node in model.graph.node if node.op_type not in NOT_KERNELS)
    inputs = {i.name for i in model.graph.initializer}
    graph_input = next(i for i in model.graph.input if i.name not in inputs)
    shape = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    feeds = {graph_input.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = session.run(None, feeds)[0]
    compiled = {}
    compile_s = {}
    for level in (0, 2):
        start = time.perf_counter()
        compiled[level] = woodpecker.compile(path, opt_level=level)
        compile_s[level] = time.perf_counter() - start
    out = compiled[2].run(None, feeds)[0]
    stats = compiled[2].stats
    ms = median_ms(
        {
            "O0": lambda: compiled[0].run(None, feeds),
            "O2": lambda: compiled[2].run(None, feeds),
            "ORT": lambda: session.run(None, feeds),
        },
        repeat,
    )
    return Row(
        name=name,
        onnx_ops=onnx_ops,
        wpk_ops=stats.num_ops_before,
        ops_o2=stats.num_graph_ops,
        kernels_o2=stats.num_kernels,
        o0_ms=ms["O0"],
        o2_ms=ms["O2"],
        ort_ms=ms["ORT"],
        max_diff=float(np.max(np.abs(out.astype(np.float64) - reference))),
        compile_o0_s=compile_s[0],
        compile_o2_s=compile_s[2],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=REPO / ".cache" / "models")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of the test CNN")
    parser.add_argument("--repeat-large", type=int, default=3, help="timed runs of each real model")
    args = parser.parse_args()

    models: list[tuple[str, Path, int]] = [("tiny_resnet (64x64)", bundled_model_path(), args.repeat)]
    missing = []
    for name in REAL_MODELS:
        path = args.models_dir / f"{name}.onnx"
        if path.is_file():
            models.append((name, path, args.repeat_large))
        else:
            missing.append(name)
    rows = []
    for name, path, repeat in models:
        rows.append(measure(name, path, repeat))
        print(f"measured {name}", flush=True)

    print(f"\nCPU, {os.cpu_count()} cores; latency = median ms of the timed runs, all in this one run")
    header = (
        f"{'model':20} {'ONNX ops':>8} {'wpk ops':>7} {'ops O2':>6} {'kernels O2':>10} "
        f"{'O0 ms':>9} {'O2 ms':>9} {'ORT ms':>9} {'O0/O2':>6} {'O2/ORT':>7} {'max|diff|':>9} "
        f"{'compile O0/O2 s':>15}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.name:20} {r.onnx_ops:8d} {r.wpk_ops:7d} {r.ops_o2:6d} {r.kernels_o2:10d} "
            f"{r.o0_ms:9.2f} {r.o2_ms:9.2f} {r.ort_ms:9.2f} {r.o0_ms / r.o2_ms:5.2f}x {r.o2_ms / r.ort_ms:6.2f}x "
            f"{r.max_diff:9.1e} {r.compile_o0_s:7.1f}/{r.compile_o2_s:<7.1f}"
        )
    if missing:
        print(
            f"\nnot measured (no .onnx in {args.models_dir}): {', '.join(missing)}; "
            "run tools/export_torchvision_models.py"
        )


if __name__ == "__main__":
    main()
