"""Generated kernels against the vendor libraries (oneDNN, BLAS), per kernel and end to end.

    python bench/bench_libraries.py MODEL.onnx [MODEL.onnx ...] --db RECORDS.db [--kinds conv depthwise_conv]
                                    [--e2e-repeat 20] [--e2e-rounds 3] [--skip-kernels] [--skip-e2e]

RECORDS.db holds the tuning records (`wpk tune`); the selection this script makes is stored in
it too, as `wpk compile --select measure` would.

Per kernel (each distinct signature of the listed kinds): the selection measures the default
schedule, the tuned one (if recorded) and oneDNN side by side and records its choice; then,
independently, every candidate is measured again, interleaved, for `--verify-rounds` rounds
(the same runner and method: blocks alternating with the default, relative times), and the
table shows those times and the choice's time over the best of them.

End to end: each model compiled with libraries="none" (tuned records) and "all" (the recorded
choices), checked against ONNX Runtime, then timed as bench_tuned_model.py does: ONNX Runtime
in blocks, the two Woodpecker plans alternating run by run; ratios of medians and the median
of back-to-back pair ratios.
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
from woodpecker.backend.cpu import available_cores
from woodpecker.compiler import CompileOptions, random_feeds
from woodpecker.frontend import lower_model
from woodpecker.measure.cpu_runner import InProcessCpuRunner
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.tasks import cpu_tasks
from woodpecker.select.selection import SelectOptions, select_implementations
from woodpecker.tune.records import record_configs


def kernel_table(models: list[Path], db: str, kinds: set[str], verify_rounds: int) -> None:
    runner = InProcessCpuRunner()
    seen: set[str] = set()
    rows = []
    for path in models:
        lowered = lower_model(str(path))
        with lowered.imported.context:
            extracted = cpu_tasks(lowered.module, len(lowered.weights), CpuMachine.host(threads=available_cores()))
        chosen = [e for e in extracted if e.task.kind in kinds and e.task.key not in seen]
        unique = {e.task.key: e for e in chosen}
        seen |= set(unique)
        records = record_configs(list(unique.values()), db)
        tasks = [e.task for e in unique.values()]
        choices = select_implementations(tasks, SelectOptions(("onednn",), "measure", db), records,
                                         runner_factory=lambda: runner)
        for choice, task in zip(choices, tasks, strict=True):
            tuned = records.get(task.key)
            configs = {"default": {}, "onednn": {"impl": "onednn"}}
            if tuned:
                configs["tuned"] = tuned
            samples: dict[str, list[float]] = {name: [] for name in configs}
            (reference,) = runner.measure(task, [{}])
            for _ in range(verify_rounds):
                for name, config in configs.items():
                    (result,) = runner.measure(task, [config])
                    if result.ok:
                        samples[name].append(result.value(reference.seconds))
            times = {name: min(values) for name, values in samples.items() if values}
            picked = {"generated": "tuned" if tuned else "default"}.get(choice.choice, choice.choice)
            best = min(times.values())
            rows.append((path.stem, task.description, len(task.model_kernels), times, picked, times[picked] / best))
            print(_row(rows[-1]), flush=True)
    print()
    print("| model | kernel | n | default ms | tuned ms | oneDNN ms | choice | choice / best |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    for row in rows:
        print(_row(row))
    ratios = [row[5] for row in rows]
    print(f"\nchoice / best of the re-measured candidates: geometric mean {statistics.geometric_mean(ratios):.3f}, "
          f"worst {max(ratios):.3f} over {len(rows)} kernels")


def _row(row) -> str:
    model, description, count, times, picked, ratio = row

    def ms(name: str) -> str:
        return f"{times[name] * 1e3:.3f}" if name in times else "-"

    return (f"| {model} | {description} | {count} | {ms('default')} | {ms('tuned')} | {ms('onednn')} | {picked} | "
            f"{ratio:.3f} |")


def time_call(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def end_to_end(path: Path, db: str, repeat: int, rounds: int) -> None:
    plans = {
        "none": woodpecker.compile(str(path), options=CompileOptions(libraries="none", tuning_db=db)),
        "all": woodpecker.compile(str(path), options=CompileOptions(libraries="all", select="measure",
                                                                       tuning_db=db)),
    }
    stats = plans["all"].stats
    print(f"{path.name}: {stats.num_kernels} graph kernels; libraries=all: {stats.library_kernels} library calls, "
          f"{stats.tuned_kernels} tuned; libraries=none: {plans['none'].stats.tuned_kernels} tuned")
    feeds = random_feeds(plans["none"], seed=0)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    for name, model in plans.items():
        got = model.run(None, feeds)
        num = sum(float(np.sum((g.astype(np.float64) - e) ** 2)) for g, e in zip(got, expected, strict=True))
        den = sum(float(np.sum(e.astype(np.float64) ** 2)) for e in expected)
        print(f"  libraries={name}: relative L2 error vs ONNX Runtime {np.sqrt(num / den):.2e}")
    calls = {name: (lambda m=model: m.run(None, feeds)) for name, model in plans.items()}
    calls["onnxruntime"] = lambda: session.run(None, feeds)
    for fn in calls.values():
        fn()
        fn()
    runs: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for _ in range(repeat):
            runs["onnxruntime"].append(time_call(calls["onnxruntime"]))
        time.sleep(0.5)
        for _ in range(repeat):
            for name in ("none", "all"):
                runs[name].append(time_call(calls[name]))
        time.sleep(0.5)
    medians = {name: statistics.median(samples) for name, samples in runs.items()}
    for name, value in medians.items():
        print(f"  {name:12} median {value:9.3f} ms")
    pairs = sorted(a / n for n, a in zip(runs["none"], runs["all"], strict=True))
    print(f"  all / none: median of {len(pairs)} back-to-back pairs {statistics.median(pairs):.3f}; medians "
          f"{medians['all'] / medians['none']:.3f}; all / onnxruntime {medians['all'] / medians['onnxruntime']:.3f}; "
          f"none / onnxruntime {medians['none'] / medians['onnxruntime']:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--db", required=True, help="tuning records; the selection is recorded here too")
    parser.add_argument("--kinds", nargs="+", default=["conv", "depthwise_conv"])
    parser.add_argument("--verify-rounds", type=int, default=2)
    parser.add_argument("--e2e-repeat", type=int, default=20)
    parser.add_argument("--e2e-rounds", type=int, default=3)
    parser.add_argument("--skip-kernels", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_kernels:
        kernel_table(args.models, args.db, set(args.kinds), args.verify_rounds)
    if not args.skip_e2e:
        for path in args.models:
            end_to_end(path, args.db, args.e2e_repeat, args.e2e_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
