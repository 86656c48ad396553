"""A whole model before and after tuning, next to ONNX Runtime, in one run.

    wpk tune MODEL.onnx --db RECORDS.db --trials 24        # first
    python bench/bench_tuned_model.py MODEL.onnx --db RECORDS.db [--repeat 20] [--rounds 3]

Compiles the model with default schedules and with the tuning records, checks both against
ONNX Runtime, then times them in rounds: ONNX Runtime in a block, then default and tuned
alternating run by run (so the machine's speed changes hit both alike); prints the median and
10th-percentile latencies and their ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import woodpecker
from woodpecker.compiler import CompileOptions, random_feeds


def time_call(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--db", required=True, help="the tuning records")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    default = woodpecker.compile(str(args.model), options=CompileOptions(use_tuning_records=False))
    tuned = woodpecker.compile(str(args.model), options=CompileOptions(tuning_db=args.db))
    print(f"{args.model.name}: {tuned.stats.num_kernels} graph kernels; {tuned.stats.tuned_kernels} CPU kernels "
          f"compiled with a tuning record")
    feeds = random_feeds(default, seed=0)
    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    for name, model in (("default", default), ("tuned", tuned)):
        got = model.run(None, feeds)
        worst = max(float(np.max(np.abs(g.astype(np.float64) - e))) for g, e in zip(got, expected, strict=True))
        scale = max(float(np.max(np.abs(e))) for e in expected)
        ok = all(np.allclose(g, e, rtol=1e-3, atol=1e-4 * scale) for g, e in zip(got, expected, strict=True))
        verdict = "OK" if ok else "MISMATCH"
        print(f"  {name}: max |diff| vs ONNX Runtime {worst:.2e} (outputs up to {scale:.2e}): {verdict}")
        if not ok:
            return 1
    runs: dict[str, list[float]] = {"default": [], "tuned": [], "onnxruntime": []}
    calls = {
        "default": lambda: default.run(None, feeds),
        "tuned": lambda: tuned.run(None, feeds),
        "onnxruntime": lambda: session.run(None, feeds),
    }
    for fn in calls.values():  # warm up (the JIT compiles each function on its first call)
        fn()
        fn()
    # Default and tuned alternate run by run: this VM switches between a fast and a ~1.3x slower
    # mode every few seconds, so blocks of runs of one model would compare modes, not models.
    # ONNX Runtime runs in blocks of its own: its threads spin after a run (as do ours, OpenMP's
    # KMP_BLOCKTIME), and the runtime that runs next would share the cores with them.
    for _ in range(args.rounds):
        for _ in range(args.repeat):
            runs["onnxruntime"].append(time_call(calls["onnxruntime"]))
        time.sleep(0.5)
        for _ in range(args.repeat):
            for name in ("default", "tuned"):
                runs[name].append(time_call(calls[name]))
        time.sleep(0.5)
    medians = {name: statistics.median(samples) for name, samples in runs.items()}
    lows = {name: float(np.percentile(samples, 10)) for name, samples in runs.items()}
    print(f"  latency over {args.rounds} rounds of {args.repeat} runs of each (ms):")
    for name in runs:
        print(f"    {name:12} median {medians[name]:9.3f}   10th percentile {lows[name]:9.3f}")
    pairs = sorted(t / d for d, t in zip(runs["default"], runs["tuned"], strict=True))
    print(f"  tuned / default, median of the {len(pairs)} back-to-back pairs: {statistics.median(pairs):.3f} "
          f"(quartiles {pairs[len(pairs) // 4]:.3f} .. {pairs[3 * len(pairs) // 4]:.3f})")
    for stat, values in (("median", medians), ("10th percentile", lows)):
        print(f"  {stat}: tuned / default {values['tuned'] / values['default']:.3f}   "
              f"tuned / onnxruntime {values['tuned'] / values['onnxruntime']:.3f}   "
              f"default / onnxruntime {values['default'] / values['onnxruntime']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
