#!/usr/bin/env python3
"""Woodpecker next to ONNX Runtime, OpenVINO, IREE and TVM: compile time, latency, accuracy, thread scaling.

    python bench/bench_peers.py [--models resnet18,resnet50,mobilenet_v2,bert_base] [--models-dir /work/models]
        [--engines woodpecker,onnxruntime,openvino,iree,tvm] [--threads 2] [--rounds 3] [--runs 10]
        [--woodpecker-options opt_level=2,db=RECORDS.db,schedule=FILE] [--scaling] [--json OUT.json]

The peers are an optional extra (`pip install -e '.[peers]'`); an engine that does not import is one
line "not installed". Each engine runs in a worker process of its own (bench/peer_engines.py) with
the same thread count (OMP_NUM_THREADS, ORT intra_op_num_threads, OpenVINO INFERENCE_NUM_THREADS
with f32 precision, IREE's task topology, TVM_NUM_THREADS) and the same seeded input. Per engine:
compile/load time, the first run, the median and inter-quartile range of the latency over all timed
runs, and the relative L2 error of its outputs against ONNX Runtime's. The engines are interleaved:
R rounds, each a block of N runs (after --warmup untimed ones) of every engine in turn (a pause
between blocks lets the previous engine's spinning threads sleep), so the machine's drift hits them
all. The machine's load (the load average, the other processes' CPU use over a second, a fixed
reference loop's time) is measured before and after and printed. --scaling runs every engine at 1
thread and at --threads and prints the speedup.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_engines import ENGINES, WoodpeckerOptions

DEFAULT_MODELS = ("resnet18", "resnet50", "mobilenet_v2", "bert_base")
# A model name -> the files it may be in the models directory (BERT-base only when it was exported).
MODEL_FILES = {"bert_base": ("bert_base.onnx", "bert-base.onnx", "bert_base_uncased.onnx", "bert-base-uncased.onnx")}
DEFAULT_SEQUENCE = 128  # an open sequence dimension (BERT)
WORKER = Path(__file__).resolve().parent / "peer_engines.py"
DETAIL_COLUMNS = ("model", "engine", "threads", "OS threads", "compile s", "first run ms", "median ms", "IQR ms",
                  "runs", "rel L2 vs ORT")
RATIO_COLUMNS = ("model", "threads", "woodpecker ms", "onnxruntime ms", "openvino ms", "woodpecker / ORT",
                 "woodpecker / OpenVINO")
SCALING_COLUMNS = ("model", "engine", "1 thread ms", "N threads ms", "speedup 1 -> N")


# ---------------------------------------------------------------------------------------------------------------
# The machine's load
# ---------------------------------------------------------------------------------------------------------------


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values), idle


def machine_load() -> dict[str, float]:
    """The load average, the share of all cores busy over one second (this process idle) and the
    best of 3 times of a fixed pure-Python loop (ms; slower when the cores are shared)."""
    total0, idle0 = _cpu_times()
    time.sleep(1.0)
    total1, idle1 = _cpu_times()
    busy = 1.0 - (idle1 - idle0) / max(1, total1 - total0)
    loop_ms = []
    for _ in range(3):
        start = time.perf_counter()
        acc = 0
        for i in range(1_000_000):
            acc += i * i
        loop_ms.append((time.perf_counter() - start) * 1e3)
    one, five, fifteen = os.getloadavg()
    return {"loadavg_1m": one, "loadavg_5m": five, "loadavg_15m": fifteen, "busy_share": busy,
            "reference_loop_ms": min(loop_ms), "cores": float(os.cpu_count() or 0)}


def load_line(label: str, load: dict[str, float]) -> str:
    return (f"machine load {label}: loadavg {load['loadavg_1m']:.2f} / {load['loadavg_5m']:.2f} / "
            f"{load['loadavg_15m']:.2f} (1/5/15 min, {int(load['cores'])} cores); cores busy over 1 s: "
            f"{100 * load['busy_share']:.0f}%; reference loop {load['reference_loop_ms']:.1f} ms")


# ---------------------------------------------------------------------------------------------------------------
# Models and inputs
# ---------------------------------------------------------------------------------------------------------------


def resolve_model(name: str, models_dir: Path) -> Path | None:
    """A model name (looked up in `models_dir`) or a path to an .onnx file; None when it is not there."""
    if name.endswith(".onnx"):
        path = Path(name)
        return path if path.exists() else None
    for file in MODEL_FILES.get(name, (f"{name}.onnx",)):
        if (models_dir / file).exists():
            return models_dir / file
    return None


def seeded_feeds(path: Path, seed: int) -> dict[str, np.ndarray]:
    """The same inputs for every engine: float inputs standard normal; integer ones valid token ids
    (below the vocabulary size of the embedding they index), masks of ones, segment ids of zeros."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    initializers = {init.name: tuple(init.dims) for init in graph.initializer}
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (1 if i == 0 else DEFAULT_SEQUENCE)
                for i, d in enumerate(tensor.shape.dim)]
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(dims).astype(dtype)
        elif "mask" in value.name:
            feeds[value.name] = np.ones(dims, dtype)
        elif "type" in value.name or "segment" in value.name:
            feeds[value.name] = np.zeros(dims, dtype)
        else:
            vocab = _indexed_rows(graph, value.name, initializers) or 1000
            feeds[value.name] = rng.integers(0, vocab, size=dims).astype(dtype)
    return feeds


def _indexed_rows(graph: Any, name: str, initializers: dict[str, tuple[int, ...]]) -> int | None:
    """The row count of the initializer a Gather indexes with the input `name` (the vocabulary)."""
    for node in graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == name:
            dims = initializers.get(node.input[0])
            if dims:
                return int(dims[0])
    return None


def relative_l2(got: list[np.ndarray], expected: list[np.ndarray]) -> float:
    if len(got) != len(expected) or any(g.size != e.size for g, e in zip(got, expected, strict=True)):
        return math.nan
    num = sum(float(np.sum((g.astype(np.float64).ravel() - e.astype(np.float64).ravel()) ** 2))
              for g, e in zip(got, expected, strict=True))
    den = sum(float(np.sum(e.astype(np.float64) ** 2)) for e in expected)
    return math.sqrt(num / den) if den > 0 else math.sqrt(num)


# ---------------------------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    model: str
    engine: str
    threads: int
    status: str = "ready"
    detail: str = ""
    version: str = ""
    compile_s: float = math.nan
    first_run_ms: float = math.nan
    os_threads: int = 0  # the worker process's threads after its first run (the engine's pool and the rest)
    samples_ms: list[float] = field(default_factory=list)
    rel_l2: float = math.nan
    log: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms) if self.samples_ms else math.nan

    @property
    def iqr_ms(self) -> float:
        if len(self.samples_ms) < 2:
            return math.nan
        q1, q3 = np.percentile(self.samples_ms, [25, 75])
        return float(q3 - q1)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("samples_ms")
        data.update(median_ms=self.median_ms, iqr_ms=self.iqr_ms, runs=len(self.samples_ms))
        return data


class Worker:
    """One engine on one model at one thread count, in its own process."""

    def __init__(self, result: Result, model: Path, feeds_file: Path, scratch: Path, woodpecker: dict[str, Any],
                 python: str, timeout_s: float) -> None:
        self.result = result
        self.timeout_s = timeout_s
        self.outputs_file = scratch / f"{result.model}-{result.engine}-{result.threads}.npz"
        spec = {"engine": result.engine, "model": str(model), "feeds": str(feeds_file), "threads": result.threads,
                "outputs": str(self.outputs_file), "woodpecker": woodpecker}
        spec_file = scratch / f"{result.model}-{result.engine}-{result.threads}.json"
        spec_file.write_text(json.dumps(spec))
        result.log = str(scratch / f"{result.model}-{result.engine}-{result.threads}.log")
        threads = str(result.threads)
        env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                   TVM_NUM_THREADS=threads)
        self._log = open(result.log, "w")  # noqa: SIM115 (open for the worker's lifetime)
        self.process = subprocess.Popen([python, str(WORKER), str(spec_file)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)

    def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout_s)
        if not ready:  # an engine that hangs (or compiles for ever) is one failed line, not a stuck benchmark
            self.process.kill()
            return {"status": "failed", "detail": f"no answer in {self.timeout_s:g} s (log: {self.result.log})"}
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            return {"status": "failed", "detail": f"the worker exited with code {code} (log: {self.result.log})"}
        return json.loads(line)

    def start(self) -> list[np.ndarray] | None:
        """Waits until the engine is loaded and has run once; its outputs, None if it cannot run."""
        message = self._receive()
        self.result.status = message["status"]
        self.result.detail = message.get("detail", "")
        if self.result.status != "ready":
            self.close()
            return None
        self.result.compile_s = message["compile_s"]
        self.result.first_run_ms = message["first_run_ms"]
        self.result.version = message["version"]
        self.result.os_threads = message["os_threads"]
        with np.load(self.outputs_file) as data:
            return [data[f"arr_{i}"] for i in range(len(data.files))]

    def time_block(self, runs: int, warmup: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"run {runs} {warmup}\n")
        self.process.stdin.flush()
        message = self._receive()
        if "ms" in message:
            self.result.samples_ms.extend(message["ms"])
        else:
            self.result.status, self.result.detail = message["status"], message["detail"]

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def block_runs(runs: int, first_run_ms: float, budget_s: float) -> int:
    """The runs of one block: `runs`, fewer for an engine so slow that they would take past `budget_s`."""
    return max(1, min(runs, int(budget_s * 1e3 / max(first_run_ms, 1e-3))))


def bench_model(name: str, path: Path, args: argparse.Namespace, scratch: Path) -> list[Result]:
    feeds = seeded_feeds(path, args.seed)
    feeds_file = scratch / f"{name}-feeds.npz"
    np.savez(feeds_file, **feeds)
    thread_counts = sorted({1, args.threads}) if args.scaling else [args.threads]
    woodpecker = asdict(WoodpeckerOptions.parse(args.woodpecker_options))
    running: list[tuple[Worker, int]] = []
    results: list[Result] = []
    outputs: dict[tuple[str, int], list[np.ndarray]] = {}
    # Loaded one at a time (compiling on all the cores), then all timed in interleaved rounds.
    for threads in thread_counts:
        for engine in args.engines:
            result = Result(name, engine, threads)
            results.append(result)
            worker = Worker(result, path, feeds_file, scratch, woodpecker, args.python, args.timeout_s)
            got = worker.start()
            print(f"  {name} {engine} x{threads}: " + (
                f"ready ({result.version}), compile {result.compile_s:.2f} s, first run {result.first_run_ms:.1f} ms"
                if got is not None else f"{result.status}" + (f" ({result.detail})" if result.detail else "")),
                flush=True)
            if got is not None:
                outputs[(engine, threads)] = got
                running.append((worker, block_runs(args.runs, result.first_run_ms, args.block_budget_s)))
    for result in results:
        reference = outputs.get(("onnxruntime", result.threads)) or next(
            (o for (e, _), o in outputs.items() if e == "onnxruntime"), None)
        if (result.engine, result.threads) in outputs and reference is not None:
            result.rel_l2 = relative_l2(outputs[(result.engine, result.threads)], reference)
    try:
        for _ in range(args.rounds):
            for worker, runs in running:
                if worker.result.status == "ready":
                    worker.time_block(runs, args.warmup)
                    time.sleep(args.pause_s)
    finally:
        for worker, _ in running:
            worker.close()
    return results


# ---------------------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------------------


def _num(value: float, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _markdown(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(columns))) + "|"
    return "\n".join([head, rule, *("| " + " | ".join(row) + " |" for row in rows)])


def detail_table(results: list[Result]) -> str:
    rows = []
    for r in results:
        if r.status == "not installed":  # one line of its own above the table
            continue
        if r.status != "ready":
            rows.append([r.model, r.engine, str(r.threads), "-", r.status, "-", "-", "-", "-", "-"])
            continue
        rows.append([r.model, r.engine, str(r.threads), str(r.os_threads), _num(r.compile_s), _num(r.first_run_ms, 1),
                     _num(r.median_ms, 3), _num(r.iqr_ms, 3), str(len(r.samples_ms)), f"{r.rel_l2:.2e}"
                     if math.isfinite(r.rel_l2) else "-"])
    return _markdown(DETAIL_COLUMNS, rows)


def _median(results: list[Result], model: str, engine: str, threads: int) -> float:
    found = [r for r in results if (r.model, r.engine, r.threads) == (model, engine, threads) and r.samples_ms]
    return found[0].median_ms if found else math.nan


def ratio_rows(results: list[Result], threads: int) -> list[dict[str, Any]]:
    rows = []
    for model in dict.fromkeys(r.model for r in results):
        ours, ort, ov = (_median(results, model, e, threads) for e in ("woodpecker", "onnxruntime", "openvino"))
        rows.append({"model": model, "threads": threads, "woodpecker_ms": ours, "onnxruntime_ms": ort,
                     "openvino_ms": ov, "woodpecker_over_ort": ours / ort, "woodpecker_over_openvino": ours / ov})
    return rows


def ratio_table(rows: list[dict[str, Any]]) -> str:
    return _markdown(RATIO_COLUMNS, [[row["model"], str(row["threads"]), _num(row["woodpecker_ms"], 3),
                                      _num(row["onnxruntime_ms"], 3), _num(row["openvino_ms"], 3),
                                      _num(row["woodpecker_over_ort"]), _num(row["woodpecker_over_openvino"])]
                                     for row in rows])


def scaling_rows(results: list[Result], threads: int) -> list[dict[str, Any]]:
    rows = []
    for model in dict.fromkeys(r.model for r in results):
        for engine in dict.fromkeys(r.engine for r in results if r.model == model):
            one, many = _median(results, model, engine, 1), _median(results, model, engine, threads)
            rows.append({"model": model, "engine": engine, "one_thread_ms": one, "threads": threads,
                         "threads_ms": many, "speedup": one / many})
    return rows


def scaling_table(rows: list[dict[str, Any]], threads: int) -> str:
    columns = tuple(c.replace("N", str(threads)) for c in SCALING_COLUMNS)
    return _markdown(columns, [[row["model"], row["engine"], _num(row["one_thread_ms"], 3),
                                _num(row["threads_ms"], 3), _num(row["speedup"])] for row in rows])


# ---------------------------------------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    """`value` with NaN and infinities as None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="comma-separated names (looked up in --models-dir) or .onnx paths")
    parser.add_argument("--models-dir", type=Path, default=Path(os.environ.get("WPK_MODELS_DIR", "/work/models")))
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, of {', '.join(ENGINES)}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each engine per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs at the start of each block")
    parser.add_argument("--block-budget-s", type=float, default=10.0,
                        help="an engine whose one run is slow gets fewer runs per round, to stay about this long")
    parser.add_argument("--pause-s", type=float, default=0.3, help="pause after each block (spinning threads sleep)")
    parser.add_argument("--timeout-s", type=float, default=1200.0,
                        help="an engine that does not answer in this long (loading, or one block) is killed: failed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--woodpecker-options", default="",
                        help="comma-separated: opt_level=0|1|2, db=RECORDS (the tuned plan), schedule=FILE, "
                        "libraries=..., select=..., no_records")
    parser.add_argument("--scaling", action="store_true", help="also run every engine at 1 thread: the speedup")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the worker processes")
    args = parser.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; known: {', '.join(ENGINES)}")
    if args.threads < 1 or args.rounds < 1 or args.runs < 1:
        parser.error("--threads, --rounds and --runs must be at least 1")
    try:
        WoodpeckerOptions.parse(args.woodpecker_options)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    before = machine_load()
    print(load_line("before", before), flush=True)
    results: list[Result] = []
    missing = []
    with tempfile.TemporaryDirectory(prefix="wpk-peers-") as scratch:
        for name in (m.strip() for m in args.models.split(",") if m.strip()):
            path = resolve_model(name, args.models_dir)
            if path is None:
                missing.append(name)
                print(f"  {name}: no model file in {args.models_dir}, skipped", flush=True)
                continue
            results += bench_model(Path(name).stem, path, args, Path(scratch))
        logs = {r.log: Path(r.log).read_text()[-4000:] for r in results if r.status == "failed" and r.log}
    after = machine_load()
    print(load_line("after", after))
    print()
    for engine in args.engines:
        down = [r for r in results if r.engine == engine and r.status == "not installed"]
        if down:
            print(f"{engine}: not installed ({down[0].detail})")
    for r in results:
        if r.status == "failed":
            print(f"{r.model} {r.engine} x{r.threads}: failed: {r.detail}")
    print(f"\n{args.rounds} rounds x {args.runs} runs of each engine (fewer for one whose run takes over "
          f"{args.block_budget_s:g} s / {args.runs}), {args.threads} threads, interleaved; median and IQR over all "
          "timed runs; OS threads: the worker process's after its first run\n")
    print(detail_table(results))
    ratios = ratio_rows(results, args.threads)
    print()
    print(ratio_table(ratios))
    scaling = scaling_rows(results, args.threads) if args.scaling else []
    if args.scaling:
        print()
        print(scaling_table(scaling, args.threads))
    if args.json:
        args.json.write_text(json.dumps(_finite({
            "threads": args.threads, "rounds": args.rounds, "runs": args.runs, "engines": args.engines,
            "woodpecker_options": args.woodpecker_options, "load_before": before, "load_after": after,
            "missing_models": missing, "results": [r.summary() for r in results], "ratios": ratios,
            "scaling": scaling, "failed_logs": logs,
        }), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
