"""Search strategies compared: GA, TPE and random search with the same trial budget, on
ResNet-50 conv layers and a GEMM, several seeds each, measured on this CPU.

    python bench/bench_tuning.py [--trials 24] [--seeds 0 1 2] [--out bench-out/tuning]

Every (kernel, configuration) is measured once (CachedRunner, kept in OUT/measurements.json),
so the strategies are compared on the same numbers: a strategy that proposes a configuration
another already measured gets the same time. For each kernel and strategy it prints the best
time found (median over the seeds) and the trials needed to come within 5% of the best time
any strategy found (median over the seeds; '-' when a seed never got there), and it writes
OUT/comparison.csv and OUT/convergence.png.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import optuna
from onnx import TensorProto, helper, numpy_helper

from woodpecker.database import COMPLETE, FAILED, Trial, open_database
from woodpecker.measure.cpu_runner import CpuMeasureOptions, IsolatedCpuRunner
from woodpecker.measure.recorded import CachedRunner
from woodpecker.tune.tune_model import model_cpu_tasks
from woodpecker.tune.tuner import STRATEGIES, TuneOptions, tune_tasks

WITHIN = 1.05


def conv_model(c: int, k: int, hw: int, kernel: int, stride: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((k, c, kernel, kernel)) * 0.1).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    pad = kernel // 2
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[pad] * 4, strides=[stride, stride]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    out = (hw + 2 * pad - kernel) // stride + 1
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, c, hw, hw))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, k, out, out))],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def gemm_model(m: int, k: int, n: int) -> onnx.ModelProto:
    w = (np.random.default_rng(0).standard_normal((k, n)) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, (m, k))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (m, n))],
        [numpy_helper.from_array(w, "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# ResNet-50 layers (N=1, 224x224 input) and a GEMM.
KERNELS = {
    "r50 conv3x3 64->64 56x56": lambda: conv_model(64, 64, 56, 3, 1),
    "r50 conv1x1 256->64 56x56": lambda: conv_model(256, 64, 56, 1, 1),
    "r50 conv3x3 128->128 28x28": lambda: conv_model(128, 128, 28, 3, 1),
    "r50 conv3x3 s2 128->128 56->28": lambda: conv_model(128, 128, 56, 3, 2),
    "r50 conv1x1 1024->256 14x14": lambda: conv_model(1024, 256, 14, 1, 1),
    "gemm 256x1024x1024": lambda: gemm_model(256, 1024, 1024),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    parser.add_argument("--out", type=Path, default=Path("bench-out/tuning"))
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    runner = CachedRunner(IsolatedCpuRunner(CpuMeasureOptions(repeat=5, min_seconds=0.05)),
                          args.out / "measurements.json", task_key=lambda task: task.key.split("@")[0])
    rows = []
    curves: dict[str, dict[str, list[list[float]]]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.kernels:
            model_file = Path(tmp) / "model.onnx"
            onnx.save(KERNELS[label](), str(model_file))
            kinds = ["matmul"] if label.startswith("gemm") else ["conv"]
            ((task, space),) = model_cpu_tasks(str(model_file), kernels=kinds)
            histories: dict[tuple[str, int], list[float]] = {}
            for strategy in args.strategies:
                for seed in args.seeds:
                    db = str(Path(tmp) / f"{strategy}-{seed}.journal")
                    own = dataclasses.replace(task, key=f"{task.key}@{strategy}.{seed}")
                    options = TuneOptions(args.trials, strategy, seed, storage=db, confirm_top=0)  # search only
                    tune_tasks([(own, space)], runner, options)
                    with open_database(db) as database:
                        histories[strategy, seed] = _history(database.trials([own.key])[own.key])
                    print(f"  {label}: {strategy} seed {seed} best {min(histories[strategy, seed]) * 1e3:.3f} ms "
                          f"({time.perf_counter() - start:.0f} s so far)", file=sys.stderr)
            overall = min(min(h) for h in histories.values())
            default = histories[args.strategies[0], args.seeds[0]][0]
            curves[label] = {s: [_best_so_far(histories[s, seed]) for seed in args.seeds] for s in args.strategies}
            for strategy in args.strategies:
                bests = [min(histories[strategy, seed]) for seed in args.seeds]
                reach = [_trials_to(histories[strategy, seed], overall * WITHIN) for seed in args.seeds]
                rows.append({
                    "kernel": label,
                    "gflop": task.flops / 1e9,
                    "strategy": strategy,
                    "default_ms": default * 1e3,
                    "best_ms_median": statistics.median(bests) * 1e3,
                    "best_ms_per_seed": " ".join(f"{b * 1e3:.3f}" for b in bests),
                    "overall_best_ms": overall * 1e3,
                    "trials_to_5pct": " ".join("-" if r is None else str(r) for r in reach),
                    "reached": sum(r is not None for r in reach),
                    "trials_to_5pct_median": _median_reach(reach),
                    "speedup_vs_default": default / statistics.median(bests),
                })
    _write(rows, args.out / "comparison.csv")
    _plot(curves, args.out / "convergence.png", args.trials)
    _print(rows, args)
    print(f"\n{runner.misses} configurations measured, {runner.hits} requests answered from the cache; "
          f"{time.perf_counter() - start:.0f} s in all; wrote {args.out / 'comparison.csv'} and "
          f"{args.out / 'convergence.png'}")
    runner.close()
    return 0


def _history(trials: list[Trial]) -> list[float]:
    """Seconds of each finished trial in order (a failure counts as infinitely slow)."""
    values = []
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == COMPLETE:
            values.append(float(trial.seconds))
        elif trial.state == FAILED:
            values.append(float("inf"))
    return values


def _best_so_far(history: list[float]) -> list[float]:
    return list(np.minimum.accumulate(np.array(history)))


def _trials_to(history: list[float], target: float) -> int | None:
    for i, value in enumerate(history, start=1):
        if value <= target:
            return i
    return None


def _median_reach(reach: list[int | None]) -> float | None:
    """Median with 'never' as larger than any number (None if most seeds never got there)."""
    ordered = sorted(reach, key=lambda r: float("inf") if r is None else r)
    middle = ordered[len(ordered) // 2]
    return None if middle is None else float(middle)


def _write(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _print(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\n{args.trials} trials per run (the default's included), seeds {args.seeds}; "
          f"times are medians of each candidate's repeats; 'to 5%': trials until within 5% of the best any "
          f"strategy found, per seed")
    header = f"{'kernel':32} {'GFLOP':>6} {'strategy':8} {'default ms':>10} {'best ms (median)':>16} " \
             f"{'speedup':>7} {'to 5% per seed':>16} {'median':>6}"
    print(header)
    print("-" * len(header))
    for row in rows:
        median = "-" if row["trials_to_5pct_median"] is None else f"{row['trials_to_5pct_median']:.0f}"
        print(f"{row['kernel']:32} {row['gflop']:6.2f} {row['strategy']:8} {row['default_ms']:10.3f} "
              f"{row['best_ms_median']:16.3f} {row['speedup_vs_default']:6.2f}x {row['trials_to_5pct']:>16} "
              f"{median:>6}")


def _plot(curves: dict[str, dict[str, list[list[float]]]], path: Path, trials: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(3, len(curves))
    rows = (len(curves) + columns - 1) // columns
    figure = Figure(figsize=(5 * columns, 3.6 * rows))
    FigureCanvasAgg(figure)
    for index, (label, by_strategy) in enumerate(curves.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        best = min(min(min(c) for c in runs) for runs in by_strategy.values())
        for strategy, runs in by_strategy.items():
            length = min(len(r) for r in runs)
            relative = np.array([r[:length] for r in runs]) / best
            axes.plot(range(1, length + 1), np.median(relative, axis=0), label=strategy)
        axes.axhline(WITHIN, color="gray", linestyle=":", linewidth=1)
        axes.set_title(label, fontsize=9)
        axes.set_xlabel("trial")
        axes.set_ylabel("best so far / best found")
        axes.set_xlim(1, trials)
        axes.set_ylim(0.95, min(3.0, axes.get_ylim()[1]))
        axes.legend(fontsize=8)
    figure.suptitle("Best time so far (median over seeds) relative to the best any strategy found")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
