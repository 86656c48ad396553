#!/usr/bin/env python3
"""One LayerNormalization at BERT-base shape (1 x 128 x 768, axis -1, scale and bias), Woodpecker
next to onnxruntime, both on `--threads` threads, timed in interleaved rounds (the machine may be
shared: each round times both, the medians over rounds are reported).

    python bench/bench_layernorm.py [--threads 2] [--rounds 7] [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.backend.cpu import CpuOptions
from woodpecker.cli.common import time_calls
from woodpecker.compiler import CompileOptions


def layer_norm_model(shape: tuple[int, ...] = (1, 128, 768)) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    hidden = shape[-1]
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], axis=-1, epsilon=1e-12)
    graph = helper.make_graph(
        [node],
        "layer_norm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
        [
            numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), "scale"),
            numpy_helper.from_array(rng.standard_normal(hidden).astype(np.float32), "bias"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    model = layer_norm_model()
    x = np.random.default_rng(1).standard_normal((1, 128, 768)).astype(np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    options = CompileOptions(cpu=CpuOptions(parallel=args.threads > 1, threads=args.threads))
    compiled = woodpecker.compile(model, options=options)
    want = session.run(None, {"x": x})[0]
    got = compiled.run(None, {"x": x})[0]
    diff = float(np.max(np.abs(got - want)))

    ort_ms, wpk_ms = [], []
    for _ in range(args.rounds):
        ort_ms.append(time_calls(lambda: session.run(None, {"x": x}), args.repeat).median_ms)
        wpk_ms.append(time_calls(lambda: compiled.run(None, {"x": x}), args.repeat).median_ms)
    o, w = statistics.median(ort_ms), statistics.median(wpk_ms)
    print(f"LayerNorm 1x128x768, {args.threads} threads, {args.rounds} interleaved rounds x {args.repeat} calls")
    print(f"  onnxruntime {ort.__version__}: {o * 1e3:8.1f} us (rounds: {', '.join(f'{v * 1e3:.0f}' for v in ort_ms)})")
    print(f"  woodpecker        : {w * 1e3:8.1f} us (rounds: {', '.join(f'{v * 1e3:.0f}' for v in wpk_ms)})")
    print(f"  woodpecker / ORT  : {w / o:8.2f}   max |diff| vs ORT {diff:.2e}")


if __name__ == "__main__":
    main()
