"""Per-stage compile time, LLVM -O2 against -O3, and a saved model's load and first run.

    python bench/bench_cpu_deploy.py MODEL.onnx [MODEL.onnx ...] [--repeat 10] [--libraries none]

For each model and each LLVM level (compiled alternately, `--rounds` times) prints the compile's
stages, then the run time of both levels measured interleaved (median ms), then for the -O2
model: save, load in a fresh process without MLIR, its load time and its first and median runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import woodpecker
from woodpecker.backend.cpu import CpuOptions
from woodpecker.compiler import CompileOptions, random_feeds

LOAD_SCRIPT = """
import sys, time
class NoMlir:
    def find_spec(self, name, path=None, target=None):
        if name == "mlir" or name.startswith("mlir."):
            raise ImportError("no mlir here")
sys.meta_path.insert(0, NoMlir())
start = time.perf_counter()
import numpy as np, woodpecker
model = woodpecker.load(sys.argv[1])
loaded = time.perf_counter()
rng = np.random.default_rng(0)
feeds = {n: rng.standard_normal(model.input_shapes[n]).astype(np.float32) for n in model.input_names}
t = time.perf_counter(); model.run(None, feeds); first = time.perf_counter() - t
runs = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); model.run(None, feeds); runs.append(time.perf_counter() - t)
runs.sort()
print(f"{loaded - start:.4f} {model.load_seconds:.4f} {first:.4f} {runs[len(runs) // 2]:.4f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="compiles per LLVM level")
    parser.add_argument("--libraries", default="none")
    args = parser.parse_args()
    for path in args.models:
        compiled = {}
        for _ in range(args.rounds):
            for level in (2, 3):
                options = CompileOptions(
                    libraries=args.libraries, select="heuristic", cpu=CpuOptions(llvm_opt_level=level)
                )
                start = time.perf_counter()
                model = woodpecker.compile(path, options=options)
                total = time.perf_counter() - start
                stages = ", ".join(f"{k} {v:.2f}" for k, v in model.stats.stage_seconds.items())
                print(f"{Path(path).stem} -O{level}: compile {total:.2f} s ({stages})", flush=True)
                compiled[level] = model
        feeds = random_feeds(compiled[2])
        times: dict[int, list[float]] = {2: [], 3: []}
        for level in (2, 3):
            compiled[level].run(None, feeds)
        for _ in range(args.repeat):
            for level in (2, 3):
                start = time.perf_counter()
                compiled[level].run(None, feeds)
                times[level].append(time.perf_counter() - start)
        o2, o3 = (statistics.median(times[level]) * 1e3 for level in (2, 3))
        print(f"{Path(path).stem}: run -O2 {o2:.2f} ms, -O3 {o3:.2f} ms (median of {args.repeat}, interleaved)")
        ref = compiled[2].run(None, feeds)
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            saved = compiled[2].save(Path(scratch) / "model")
            save_s = time.perf_counter() - start
            size = sum(f.stat().st_size for f in saved.iterdir()) / 2**20
            done = subprocess.run(
                [sys.executable, "-c", LOAD_SCRIPT, str(saved), str(args.repeat)],
                capture_output=True,
                text=True,
                check=True,
            )
            process, load, first, median = (float(v) for v in done.stdout.split())
            print(
                f"{Path(path).stem}: save {save_s:.2f} s ({size:.1f} MiB); in a process without MLIR: imports + load "
                f"{process:.3f} s (load {load:.3f} s), first run {first * 1e3:.2f} ms, median {median * 1e3:.2f} ms"
            )
        np.testing.assert_allclose(ref[0], compiled[3].run(None, feeds)[0], rtol=1e-3, atol=1e-4)


if __name__ == "__main__":
    main()
