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
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

import woodpecker
from woodpecker.backend.cpu import CpuOptions
from woodpecker.cli.common import time_calls
from woodpecker.compiler import CompileOptions


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


def bench(case: Case, threads: int, rounds: int, repeat: int) -> None:
    model = model_of(case)
    x = (np.random.default_rng(1).standard_normal(case.shape) * case.scale).astype(np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    engines: dict[str, Callable[[], object]] = {f"onnxruntime {ort.__version__}": lambda: session.run(None, {"x": x})}
    for label, vector_math in (("woodpecker, libm math", False), ("woodpecker, vector math", True)):
        cpu = CpuOptions(parallel=threads > 1, threads=threads, vector_math=vector_math)
        compiled = woodpecker.compile(model, options=CompileOptions(cpu=cpu))
        engines[label] = lambda compiled=compiled: compiled.run(None, {"x": x})
    want = session.run(None, {"x": x})[0].astype(np.float64)
    diffs = {label: float(np.max(np.abs(fn()[0] - want))) for label, fn in engines.items()}

    times: dict[str, list[float]] = {label: [] for label in engines}
    for _ in range(rounds):
        for label, fn in engines.items():
            times[label].append(time_calls(fn, repeat).median_ms)
    medians = {label: statistics.median(values) for label, values in times.items()}
    reference = next(iter(medians.values()))
    shape = "x".join(map(str, case.shape))
    print(f"{case.name} {shape}, {threads} threads, {rounds} interleaved rounds x {repeat} calls (median ms)")
    for label, values in times.items():
        rounds_text = ", ".join(f"{v:.3f}" for v in values)
        print(
            f"  {label:24s} {medians[label]:8.3f} ms  x{medians[label] / reference:6.2f} of ORT"
            f"  max|diff| vs ORT {diffs[label]:.1e}  (rounds: {rounds_text})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args()
    for name in args.cases.split(","):
        bench(CASES[name], args.threads, args.rounds, args.repeat)


if __name__ == "__main__":
    main()
