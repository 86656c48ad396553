"""Shared pieces of the CUDA benchmarks (bench_cuda_convs.py, bench_cuda_e2e.py).

* the GPU gate: without a usable NVIDIA GPU a benchmark prints one line saying why (the reason
  `woodpecker.runtime.cuda.launch.cuda_status` gives) and exits with code 2, unless `--compile-only`;
* how each Woodpecker plan is compiled (CompileOptions for "generated", "cudnn", the plan's
  choice) and what a plan looks like (steps per implementation, arena MiB);
* PyTorch timing as the executor times a plan: CUDA events around each run, a buffer twice the
  L2 size written before each repeat (outside the timed region), TF32 off;
* the candidates alternating round by round, medians, geometric means, markdown tables.

Nothing here imports torch at module level: the compile-only path runs without it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / ".cache" / "models"
NO_GPU_EXIT = 2
TOLERANCE = 1e-4  # relative L2 error allowed against the reference (f32 everywhere, TF32 off)
MIB = 1 << 20

try:  # the repository's package, also when it is not installed into this interpreter
    import woodpecker  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "python"))


# -- the GPU gate -----------------------------------------------------------------------------------


def gpu_reason() -> str | None:
    """None when an NVIDIA GPU is usable here, else why not."""
    from woodpecker.runtime.cuda.launch import cuda_status

    return cuda_status()


def no_gpu_message(script: str, reason: str) -> str:
    return (f"{script}: needs an NVIDIA GPU to time the plans, and there is none usable here ({reason}); "
            "--compile-only compiles every plan without one")


def target_arch(requested: str | None, has_gpu: bool) -> str:
    """`requested`, else the GPU's own architecture when Woodpecker knows it, else sm_90."""
    if requested:
        return requested
    if has_gpu:
        from woodpecker.gpu.arch import ARCHS
        from woodpecker.runtime.cuda.launch import device_info

        arch = device_info().arch
        if arch in ARCHS:
            return arch
        print(f"note: the GPU is {arch}, which Woodpecker does not list; compiling for sm_90", file=sys.stderr)
    return "sm_90"


def choice_mode(requested: str | None, compile_only: bool, has_gpu: bool, db: str | None) -> str:
    """How the plan's choice is made: `requested`, else "measure" when timing on a GPU, else
    "records" with a tuning database and "heuristic" without."""
    if requested:
        return requested
    if has_gpu and not compile_only:
        return "measure"
    return "records" if db else "heuristic"


def plan_options(which: str, arch: str, db: str | None, mode: str, measure_db: str | None = None) -> Any:
    """CompileOptions of one Woodpecker candidate.

    generated: libraries="none", the default schedules (or `db`'s best tuning records);
    cudnn:     libraries="cudnn", select="heuristic" (every conv cuDNN can take);
    choice:    libraries="all", select=`mode`, records from `db`; "measure" stores its timings
               in `db`, or in `measure_db` (a scratch database) when there is no `db`.
    """
    from woodpecker.compiler import CompileOptions

    if which == "generated":
        return CompileOptions(target="cuda", arch=arch, libraries="none", select="heuristic",
                              use_tuning_records=db is not None, tuning_db=db)
    if which == "cudnn":
        return CompileOptions(target="cuda", arch=arch, libraries="cudnn", select="heuristic",
                              use_tuning_records=False)
    if which == "choice":
        storage = db if db is not None else (measure_db if mode == "measure" else None)
        return CompileOptions(target="cuda", arch=arch, libraries="all", select=mode,
                              use_tuning_records=storage is not None or mode == "measure", tuning_db=storage)
    raise ValueError(f"unknown candidate {which!r}")


# -- plans -----------------------------------------------------------------------------------------


def plan_summary(model: Any) -> dict[str, Any]:
    """Steps per implementation (and per kind), arena and weight MiB of a compiled CUDA model."""
    plan = model.plan
    impls: dict[str, int] = {}
    kinds: dict[str, str] = {}
    for step in plan.steps:
        impls[step.impl] = impls.get(step.impl, 0) + 1
        kinds[step.name] = f"{step.kind}:{step.impl}"
    return {
        "steps": len(plan.steps),
        "implementations": impls,
        "step_impls": kinds,
        "arena_mib": plan.arena_bytes / MIB,
        "weight_mib": plan.weight_bytes / MIB,
        "how": sorted({step.how for step in plan.steps}),
    }


def summary_text(summary: Mapping[str, Any]) -> str:
    impls = ", ".join(f"{impl} {count}" for impl, count in sorted(summary["implementations"].items()))
    steps = summary["steps"]
    return f"{steps} step{'' if steps == 1 else 's'} ({impls}), arena {summary['arena_mib']:.2f} MiB"


def conv_choice(model: Any) -> str:
    """What runs the conv steps of a plan ("cudnn", "generated", "cudnn+generated"), how chosen."""
    steps = [s for s in model.plan.steps if "conv" in s.kind]
    if not steps:
        return "-"
    impls = sorted({s.impl for s in steps})
    hows = sorted({s.how for s in steps})
    return f"{'+'.join(impls)} ({', '.join(hows)})"


def executor_fallbacks(model: Any) -> dict[str, str]:
    """Library steps the executor runs as their generated kernel instead (and why)."""
    executor = getattr(model, "executor", None)
    return dict(getattr(executor, "fallbacks", {}) or {})


def executor_split(model: Any) -> dict[str, str]:
    """Library steps run as the plain call plus their generated epilogue kernel (and why)."""
    executor = getattr(model, "executor", None)
    return dict(getattr(executor, "split", {}) or {})


# -- numbers --------------------------------------------------------------------------------------


def rel_l2(got: np.ndarray, expected: np.ndarray) -> float:
    got64 = np.asarray(got, dtype=np.float64)
    exp64 = np.asarray(expected, dtype=np.float64)
    if got64.shape != exp64.shape:
        return math.inf
    den = float(np.sqrt(np.sum(exp64**2)))
    num = float(np.sqrt(np.sum((got64 - exp64) ** 2)))
    if not math.isfinite(num):
        return math.inf
    return num / den if den > 0 else num


def median_ms(samples: Sequence[float] | None) -> float | None:
    """The median of `samples` (seconds) in milliseconds; None when there are none."""
    return statistics.median(samples) * 1e3 if samples else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


def geomean(values: Sequence[float | None]) -> float | None:
    found = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return statistics.geometric_mean(found) if found else None


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def alternate(timers: Mapping[str, Callable[[], list[float]]], rounds: int,
              on_error: Callable[[str, BaseException], None] | None = None) -> dict[str, list[float]]:
    """Runs every timer once per round, the order rotated each round (so drifts of the
    machine's speed hit every candidate alike); a timer that raises is dropped."""
    samples: dict[str, list[float]] = {name: [] for name in timers}
    names = list(timers)
    alive = set(names)
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)] if names else []
        for name in order:
            if name not in alive:
                continue
            try:
                samples[name].extend(timers[name]())
            except Exception as err:  # one candidate failing must not end the benchmark
                alive.discard(name)
                samples[name] = []
                if on_error is not None:
                    on_error(name, err)
    return samples


def plan_timer(model: Any, repeat: int, warmup: int) -> Callable[[], list[float]]:
    """Seconds per replay of the plan's CUDA graph (executor.time: CUDA events, L2 flushed)."""
    return lambda: model.executor.time(repeat=repeat, warmup=warmup, flush_l2=True)


# -- PyTorch ----------------------------------------------------------------------------------------


def import_torch() -> tuple[Any, str | None]:
    """(torch, None) with TF32 off and cuDNN's autotuner on; (None, why) when it cannot run here."""
    try:
        import torch
    except ImportError as err:
        return None, f"PyTorch is not installed ({err})"
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA device (a CPU-only build?)"
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return torch, None


class TorchTimer:
    """Times a PyTorch callable as `PlanExecutor.time` times a plan: `warmup` runs, then per
    repeat an L2 flush (a buffer twice the L2 size written, untimed) and CUDA events around one
    run on the current stream; under torch.no_grad."""

    def __init__(self, torch: Any):
        self.torch = torch
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        l2 = int(getattr(props, "L2_cache_size", 0) or 64 * MIB)
        self.flush = torch.empty(max(2 * l2, MIB), dtype=torch.uint8, device="cuda")
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def time(self, fn: Callable[[], Any], repeat: int, warmup: int) -> list[float]:
        torch = self.torch
        with torch.no_grad():
            for _ in range(warmup):
                fn()
            torch.cuda.synchronize()
            times = []
            for r in range(repeat):
                self.flush.fill_(r & 0xFF)
                self.start.record()
                fn()
                self.end.record()
                self.end.synchronize()
                times.append(self.start.elapsed_time(self.end) / 1e3)
        return times

    def timer(self, fn: Callable[[], Any], repeat: int, warmup: int) -> Callable[[], list[float]]:
        return lambda: self.time(fn, repeat, warmup)


def cuda_graphed(torch: Any, fn: Callable[[], Any], warmup: int = 3) -> tuple[Callable[[], Any], Any]:
    """`fn` captured in a CUDA graph (after `warmup` runs on a side stream, which also lets
    cuDNN's autotuner pick its algorithm): (replay, the captured output)."""
    with torch.no_grad():
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()
        torch.cuda.synchronize()
    return graph.replay, out


# -- command line ---------------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser, models: Sequence[str], select_help: str) -> None:
    """The arguments both CUDA benchmarks take."""
    parser.add_argument("--models", nargs="+", choices=models, default=list(models))
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of alternating candidates (default 5)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per candidate and round (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before each round's timed runs")
    parser.add_argument("--db", help="tuning records (generated kernels, recorded choices); measured choices go here")
    parser.add_argument("--select", choices=("measure", "records", "heuristic"),
                        help=f"{select_help} (default: measure on a GPU, else records with --db, else heuristic)")
    parser.add_argument("--arch", help="GPU architecture to compile for (default: the GPU's, else sm_90)")
    parser.add_argument("--compile-only", action="store_true", help="compile every plan, print them; no GPU needed")
    parser.add_argument("--json", type=Path, help="write every result to this JSON file")


def check_common_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.rounds < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("--rounds and --repeat must be positive, --warmup >= 0")


def resolve_target(args: argparse.Namespace, script: str) -> tuple[str | None, str, str] | None:
    """(why there is no GPU, None when there is one; the arch to compile for; how the plan's
    choice is made). None, after saying why, when there is no GPU and the run needs one."""
    reason = gpu_reason()
    if reason is not None and not args.compile_only:
        print(no_gpu_message(script, reason), flush=True)
        return None
    has_gpu = reason is None
    return reason, target_arch(args.arch, has_gpu), choice_mode(args.select, args.compile_only, has_gpu, args.db)
