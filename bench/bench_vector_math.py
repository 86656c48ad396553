#!/usr/bin/env python3
"""The transcendental-heavy ops at model shapes, Woodpecker next to onnxruntime, both on
`--threads` threads, timed in interleaved rounds (each round times every engine; the medians over
rounds are reported, so a machine shared with other work affects all alike). Woodpecker runs
twice: with its vector math (CpuOptions.vector_math, the default) and with the transcendentals
left to libm (one call per vector lane), the state before backend/expand_math.py:

* Softmax over the last axis of [12, 128, 128] (BERT-base attention scores): exp;
* SiLU, x * Sigmoid(x), over [1, 64, 160, 160] (YOLOv8n after its first convs): exp;
* GELU with the tanh approximation over [1, 128, 3072] (GPT-2's MLP): tanh.

    python bench/bench_vector_math.py [--threads 2] [--rounds 7] [--repeat 50] [--cases softmax,silu,gelu_tanh]
        [--models /work/models/yolov8n.onnx,/work/models/gpt2.onnx]

--models times whole models the same way (seeded inputs as tools/model_report.py makes them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

import woodpecker
from woodpecker.backend.cpu import CpuOptions
from woodpecker.cli.common import time_calls
from woodpecker.compiler import CompileOptions

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple[int, ...]
    nodes: tuple[onnx.NodeProto, ...]
    opset: int
    scale: float  # the inputs are standard normal times this


CASES = {
    "softmax": Case("Softmax", (12, 128, 128), (helper.make_node("Softmax", ["x"], ["y"], axis=-1),), 13, 3.0),
    "silu": Case(
        "SiLU",
        (1, 64, 160, 160),
        (helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])),
        13,
        2.0,
    ),
    "gelu_tanh": Case(
        "GELU-tanh", (1, 128, 3072), (helper.make_node("Gelu", ["x"], ["y"], approximate="tanh"),), 20, 1.5
    ),
}


def model_of(case: Case) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(case.nodes),
        case.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(case.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(case.shape))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])


def bench(
    title: str, model: onnx.ModelProto | Path, feeds: dict[str, np.ndarray], threads: int, rounds: int, repeat: int
) -> None:
    """Times ORT and Woodpecker with libm and with vector math, interleaved; prints medians."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])
    engines: dict[str, Callable[[], list[np.ndarray]]] = {
        f"onnxruntime {ort.__version__}": lambda: session.run(None, feeds)
    }
    for label, vector_math in (("woodpecker, libm math", False), ("woodpecker, vector math", True)):
        cpu = CpuOptions(parallel=threads > 1, threads=threads, vector_math=vector_math)
        compiled = woodpecker.compile(model, options=CompileOptions(cpu=cpu))
        engines[label] = lambda compiled=compiled: compiled.run(None, feeds)
    want = [np.asarray(w, np.float64) for w in session.run(None, feeds)]
    diffs = {}
    for label, fn in engines.items():
        diffs[label] = max(float(np.max(np.abs(g - w))) for g, w in zip(fn(), want, strict=True))

    times: dict[str, list[float]] = {label: [] for label in engines}
    for _ in range(rounds):
        for label, fn in engines.items():
            times[label].append(time_calls(fn, repeat).median_ms)
    medians = {label: statistics.median(values) for label, values in times.items()}
    reference = next(iter(medians.values()))
    print(f"{title}, {threads} threads, {rounds} interleaved rounds x {repeat} calls (median ms)")
    for label, values in times.items():
        rounds_text = ", ".join(f"{v:.3f}" for v in values)
        print(
            f"  {label:24s} {medians[label]:8.3f} ms  x{medians[label] / reference:6.2f} of ORT"
            f"  max|diff| vs ORT {diffs[label]:.1e}  (rounds: {rounds_text})",
            flush=True,
        )


def bench_case(case: Case, threads: int, rounds: int, repeat: int) -> None:
    x = (np.random.default_rng(1).standard_normal(case.shape) * case.scale).astype(np.float32)
    title = f"{case.name} {'x'.join(map(str, case.shape))}"
    bench(title, model_of(case), {"x": x}, threads, rounds, repeat)


def bench_model(path: Path, threads: int, rounds: int, repeat: int) -> None:
    sys.path.insert(0, str(REPO_ROOT / "tests" / "py"))
    from model_check import seeded_feeds  # the inputs tools/model_report.py feeds

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    bench(path.stem, path, seeded_feeds(session), threads, rounds, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}; '' for none")
    parser.add_argument("--models", default="", help="comma-separated .onnx paths to time as well")
    args = parser.parse_args()
    for name in filter(None, args.cases.split(",")):
        bench_case(CASES[name], args.threads, args.rounds, args.repeat)
    for path in filter(None, args.models.split(",")):
        bench_model(Path(path), args.threads, args.rounds, args.repeat)


if __name__ == "__main__":
    main()
