#!/usr/bin/env python3
"""Latency of a BERT-style attention block and of its MatMul+bias projections: Woodpecker vs ONNX Runtime.

Both on 2 threads (OMP_NUM_THREADS=2, ORT intra_op_num_threads=2), measured interleaved
(round-robin, `--rounds` rounds of `--repeat` calls each; the median of the rounds' medians) so that
load from other processes hits both alike. Prints each kernel's chosen implementation too.

    python bench/bench_attention.py [--repeat 10] [--rounds 5] [--seq 128]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

import woodpecker
from woodpecker import passes
from woodpecker.cli.common import time_calls

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "py"))
from test_attention import HIDDEN, attention_block, attention_feeds, model

THREADS = 2


def linear(n_out: int, seed: int = 0) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """x [1, 128, 768] @ W [768, n_out] + b."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((HIDDEN, n_out)) / np.sqrt(HIDDEN)).astype(np.float32)
    b = (0.1 * rng.standard_normal(n_out)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["y"])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    proto = model(nodes, {"x": [1, 128, HIDDEN]}, {"y": [1, 128, n_out]}, inits)
    return proto, {"x": rng.standard_normal((1, 128, HIDDEN)).astype(np.float32)}


def compile_without(proto: onnx.ModelProto, *pass_names: str) -> woodpecker.CompiledModel:
    """O2 less `pass_names` (wpk-fold-transpose: K^T materialized; wpk-fuse-attention: the chain
    unfused), for the comparison rows."""
    saved = passes.OPT_LEVEL_PIPELINES[2]
    kept = [p for p in saved.split(",") if p not in pass_names]
    passes.OPT_LEVEL_PIPELINES[2] = ",".join(kept)
    try:
        return woodpecker.compile(proto, opt_level=2)
    finally:
        passes.OPT_LEVEL_PIPELINES[2] = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    cases = {
        "attention block (12 heads, seq 128, dim 64)": (attention_block(), attention_feeds()),
        "MatMul+bias 1x128x768 @ 768x768": linear(768),
        "MatMul+bias 1x128x768 @ 768x3072": linear(3072),
    }
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, ORT intra_op_num_threads={THREADS}, "
          f"{os.cpu_count()} cores (shared with other processes: timings are noisy)")
    print(f"{'case (median of round medians)':66} {'ORT ms':>8} {'wpk ms':>8} {'wpk/ORT':>8} {'max |diff|':>11}")
    for label, (proto, feeds) in cases.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = THREADS
        session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        expected = session.run(None, feeds)[0]
        start = time.perf_counter()
        variants = {"": woodpecker.compile(proto, opt_level=2)}
        build_s = time.perf_counter() - start
        if label.startswith("attention"):
            variants[" (no fuse-attention)"] = compile_without(proto, "wpk-fuse-attention")
            variants[" (no fuse-attention, no fold-transpose)"] = compile_without(
                proto, "wpk-fuse-attention", "wpk-fold-transpose"
            )
        runs = {"ORT": lambda s=session, f=feeds: s.run(None, f)}
        runs.update({name: (lambda c=c, f=feeds: c.run(None, f)) for name, c in variants.items()})
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):  # interleaved
            for name, run in runs.items():
                samples[name].append(time_calls(run, args.repeat).median_ms)
        o = statistics.median(samples["ORT"])
        for name, compiled in variants.items():
            w = statistics.median(samples[name])
            diff = float(np.max(np.abs(compiled.run(None, feeds)[0].astype(np.float64) - expected)))
            print(f"{label + name:66} {o:8.3f} {w:8.3f} {w / o:7.2f}x {diff:11.2e}")
        for choice in variants[""].selection:
            print(f"    {choice.kind:12} {choice.description:54} -> {choice.choice} ({choice.how})")
        print(f"    compile {build_s:.1f} s")

if __name__ == "__main__":
    main()
