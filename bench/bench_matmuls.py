#!/usr/bin/env python3
"""BERT-base's matmuls, each alone in an ONNX graph: generated code vs oneDNN vs BLAS vs ONNX Runtime.

Per shape: Woodpecker compiled with libraries="none" (the generated kernel, default schedule),
"onednn" and "blas" (select="heuristic": the library call wherever it applies), and ONNX
Runtime; all on 2 threads (OMP_NUM_THREADS=2, ORT intra_op_num_threads=2), measured
interleaved (`--rounds` rounds of `--repeat` calls each, the median of the rounds' medians) so
that load from other processes hits all alike. Every variant's output is checked against
numpy float64 first.

    python bench/bench_matmuls.py [--repeat 20] [--rounds 5] [--cases qk,pv,...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import statistics
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.cli.common import time_calls
from woodpecker.compiler import CompileOptions

THREADS = 2
VARIANTS = ("none", "onednn", "blas")


@dataclass(frozen=True)
class Case:
    label: str
    lhs: tuple[int, ...]
    rhs: tuple[int, ...]  # as the graph holds it (before the Transpose when transpose_rhs)
    constant_rhs: bool = False
    transpose_rhs: bool = False  # MatMul(a, Transpose(b)): K^T of attention, a matmul_transposed


CASES = {
    "qk": Case("QK^T 12x128x64 @ (12x128x64)^T", (1, 12, 128, 64), (1, 12, 128, 64), transpose_rhs=True),
    "qk_plain": Case("QK^T 12x128x64 @ 12x64x128", (1, 12, 128, 64), (1, 12, 64, 128)),
    "pv": Case("PV 12x128x128 @ 12x128x64", (1, 12, 128, 128), (1, 12, 128, 64)),
    "qkv": Case("proj 128x768 @ W 768x768", (1, 128, 768), (768, 768), constant_rhs=True),
    "ffn1": Case("ffn1 128x768 @ W 768x3072", (1, 128, 768), (768, 3072), constant_rhs=True),
    "ffn2": Case("ffn2 128x3072 @ W 3072x768", (1, 128, 3072), (3072, 768), constant_rhs=True),
}


def _vi(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def build(case: Case, seed: int = 0) -> tuple[onnx.ModelProto, dict[str, np.ndarray], np.ndarray]:
    """The one-MatMul model, its feeds and the float64 reference."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(case.lhs).astype(np.float32)
    b = (rng.standard_normal(case.rhs) / np.sqrt(case.rhs[-2])).astype(np.float32)
    nodes, rhs_name = [], "b"
    b_logical = b
    if case.transpose_rhs:
        perm = list(range(len(case.rhs)))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        nodes.append(helper.make_node("Transpose", ["b"], ["bt"], perm=perm))
        rhs_name, b_logical = "bt", np.swapaxes(b, -1, -2)
    nodes.append(helper.make_node("MatMul", ["a", rhs_name], ["y"]))
    expected = np.matmul(a.astype(np.float64), b_logical.astype(np.float64))
    inputs, inits, feeds = [_vi("a", case.lhs)], [], {"a": a}
    if case.constant_rhs:
        inits.append(numpy_helper.from_array(b, "b"))
    else:
        inputs.append(_vi("b", case.rhs))
        feeds["b"] = b
    graph = helper.make_graph(nodes, "matmul", inputs, [_vi("y", expected.shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model, feeds, expected


def implementations(compiled: woodpecker.CompiledModel) -> str:
    calls = [f"{k.plan_description} ({k.implementation})" for k in compiled.executable.libraries]
    return ", ".join(calls) or "generated"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, ORT intra_op_num_threads={THREADS}, "
          f"{os.cpu_count()} cores (shared with other processes: timings are noisy); median ms")
    print(f"{'case':38} {'generated':>9} {'oneDNN':>9} {'BLAS':>9} {'ORT':>9}  implementations")
    for key in args.cases.split(","):
        case = CASES[key]
        model, feeds, expected = build(case)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = THREADS
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        runs = {"ORT": lambda s=session, f=feeds: s.run(None, f)}
        compiled = {}
        for libraries in VARIANTS:
            options = CompileOptions(libraries=libraries, select="heuristic", use_tuning_records=False)
            compiled[libraries] = woodpecker.compile(model, options=options)
            (got,) = compiled[libraries].run(None, feeds)
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.max(np.abs(expected))))
            runs[libraries] = lambda c=compiled[libraries], f=feeds: c.run(None, f)
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):  # interleaved
            for name, run in runs.items():
                samples[name].append(time_calls(run, args.repeat).median_ms)
        ms = {name: statistics.median(values) for name, values in samples.items()}
        impls = "; ".join(implementations(compiled[v]) for v in ("onednn", "blas"))
        print(f"{case.label:38} {ms['none']:9.3f} {ms['onednn']:9.3f} {ms['blas']:9.3f} {ms['ORT']:9.3f}  {impls}")


if __name__ == "__main__":
    main()
