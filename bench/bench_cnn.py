#!/usr/bin/env python3
"""Compile time and latency of the test CNN: Woodpecker (all cores, one core) next to ONNX Runtime.

Everything is measured in this one run on this machine; the table prints ratios.

    python bench/bench_cnn.py [--image 64] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import onnxruntime as ort

import woodpecker
from woodpecker.backend.cpu import CpuOptions
from woodpecker.cli.common import time_calls
from woodpecker.compiler import CompileOptions
from woodpecker.models.builders import tiny_resnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    model = tiny_resnet(image=args.image)
    name = model.graph.input[0].name
    x = np.random.default_rng(0).standard_normal((1, 3, args.image, args.image)).astype(np.float32)
    rows = []
    reference = None
    for label, threads in (("onnxruntime", os.cpu_count()), ("onnxruntime 1 thread", 1)):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 0
        start = time.perf_counter()
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        build_s = time.perf_counter() - start
        reference = session.run(None, {name: x})[0] if reference is None else reference
        rows.append((label, build_s, time_calls(lambda s=session: s.run(None, {name: x}), args.repeat).median_ms, 0.0))
    for label, parallel in (("woodpecker", True), ("woodpecker 1 core", False)):
        options = CompileOptions(cpu=CpuOptions(parallel=parallel))
        start = time.perf_counter()
        compiled = woodpecker.compile(model, options=options)
        build_s = time.perf_counter() - start
        out = compiled.run(None, {name: x})[0]
        diff = float(np.max(np.abs(out.astype(np.float64) - reference)))
        timing = time_calls(lambda c=compiled: c.run(None, {name: x}), args.repeat)
        rows.append((label, build_s, timing.median_ms, diff))

    base = rows[0][2]
    print(f"tiny_resnet, 1x3x{args.image}x{args.image}, {os.cpu_count()} cores, median of {args.repeat} runs")
    print(f"{'runtime':24} {'compile s':>10} {'latency ms':>11} {'vs ORT':>8} {'max |diff|':>11}")
    for label, build_s, ms, diff in rows:
        print(f"{label:24} {build_s:10.3f} {ms:11.3f} {ms / base:7.2f}x {diff:11.2e}")


if __name__ == "__main__":
    main()
