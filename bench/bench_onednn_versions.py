#!/usr/bin/env python3
"""Two oneDNN builds side by side on a model's distinct convolutions: speed, thread pools, accuracy.

    python bench/bench_onednn_versions.py [--lib LABEL=PATH/libdnnl.so.3 ...] [--model resnet50.onnx]
        [--threads 2] [--rounds 3] [--runs 20] [--json OUT.json]

Default libraries: the project's (onednn-cpu-gomp 2023.2, oneDNN 3.2 on OpenMP, in this interpreter's
prefix) and, when it is there, /work/onednn-venv/lib/libdnnl.so.3 (PyPI `onednn` 2026.1, oneDNN 3.13 on
TBB, with SYCL; install it in a scratch venv: its dependencies tbb, SVML (intel-cmplr-lib-rt) and the
dpcpp runtime are found through LD_LIBRARY_PATH = the library's folder). That build's CPU runtime is SYCL
(dnnl_version's cpu_runtime 0x200): its CPU engine is a SYCL CPU device, the OpenCL CPU runtime of the
intel-opencl-rt wheel, found through OCL_ICD_FILENAMES = the folder's libintelocl.so (without it
dnnl_engine_create fails: "SYCL cpu devices queried but not found").

Each library runs in a worker process of its own that first does what a Woodpecker process does:
libiomp5 loaded globally and one OpenMP parallel region run on --threads threads (the generated code's
pool), then libdnnl loaded. The worker counts its threads (/proc/self/task) before and after oneDNN's
first convolution: a library that brings its own thread pool (TBB) shows up there.

Per distinct convolution of the model (groups 1): src and dst in nChw16c (src plain nchw when its
channels are not a multiple of 16, as for the stem), weights in the layout the library asks for,
bias, no post-op; created after omp_set_num_threads(--threads) (the OpenMP build; TBB uses the
process's cores, which is --threads only when that is all the cores). The output is checked against
a float64 numpy convolution (relative L2). Timed interleaved: for each convolution, R rounds, each a
block of N runs of every library in turn (after 2 untimed ones), the median and 10th percentile
over all; and once more with an OpenMP parallel
region (a stand-in for a generated kernel) right before each timed call, untimed: the cost of two
pools that take turns.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# oneDNN 3.x enum values (identical in the 3.2 and 3.13 headers, checked with both devel packages).
F32, TAG_ANY, TAG_NCHW, TAG_NCHW16C, TAG_OIHW = 3, 1, 5, 78, 5
ENGINE_CPU, STREAM_IN_ORDER, FORWARD_INFERENCE, CONV_DIRECT = 1, 1, 96, 1
QUERY_IMPL_INFO_STR, QUERY_WEIGHTS_MD = 8, 131
ARG_SRC, ARG_DST, ARG_WEIGHTS, ARG_BIAS = 1, 17, 33, 41
RUNTIMES = {1: "sequential", 2: "OpenMP", 4: "TBB", 8: "threadpool", 0x200: "SYCL"}
MEMORY_ALLOCATE = ctypes.c_void_p(ctypes.c_size_t(-1).value)
Dims = ctypes.c_int64 * 12


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution of batch 1 (groups 1)."""

    c: int
    h: int
    w: int
    k: int
    kh: int
    kw: int
    stride: int
    pad: int
    count: int = 1  # how often the model has it

    @property
    def oh(self) -> int:
        return (self.h + 2 * self.pad - self.kh) // self.stride + 1

    @property
    def ow(self) -> int:
        return (self.w + 2 * self.pad - self.kw) // self.stride + 1

    def label(self) -> str:
        return f"{self.kh}x{self.kw} s{self.stride} {self.c}->{self.k} {self.h}x{self.w}"


def distinct_convs(model: Path) -> list[Conv]:
    import onnx
    from onnx import shape_inference

    proto = shape_inference.infer_shapes(onnx.load(str(model)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*proto.graph.value_info, *proto.graph.input]}
    inits = {i.name: list(i.dims) for i in proto.graph.initializer}
    found: dict[Conv, int] = {}
    for node in proto.graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("group", 1) != 1:
            continue
        _, c, h, w = shapes[node.input[0]]
        k, _, kh, kw = inits[node.input[1]]
        strides, pads = attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0])
        if len(set(strides)) != 1 or len(set(pads)) != 1:
            continue
        conv = Conv(c, h, w, k, kh, kw, strides[0], pads[0])
        found[conv] = found.get(conv, 0) + 1
    return [Conv(**{**asdict(conv), "count": n}) for conv, n in found.items()]


def reference_conv(x: np.ndarray, weights: np.ndarray, bias: np.ndarray, conv: Conv) -> np.ndarray:
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (conv.pad, conv.pad), (conv.pad, conv.pad)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (conv.kh, conv.kw), axis=(2, 3))
    windows = windows[:, :, :: conv.stride, :: conv.stride][:, :, : conv.oh, : conv.ow]
    out = np.einsum("nchwij,kcij->nkhw", windows, weights.astype(np.float64), optimize=True)
    return out + bias.astype(np.float64)[None, :, None, None]


# ---------------------------------------------------------------------------------------------------------------
# The worker: one libdnnl
# ---------------------------------------------------------------------------------------------------------------


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def thread_names() -> list[str]:
    names = []
    for task in sorted(os.listdir("/proc/self/task"), key=int):
        with open(f"/proc/self/task/{task}/comm") as comm:
            names.append(comm.read().strip())
    return names


class Library:
    def __init__(self, path: str, openmp: str, threads: int) -> None:
        self.threads = threads
        self.omp = ctypes.CDLL(openmp, mode=ctypes.RTLD_GLOBAL)
        self.omp.omp_set_num_threads(threads)
        self._noop = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: None)
        self.openmp_region()
        self.threads_after_openmp = thread_count()
        self.lib = ctypes.CDLL(path)
        lib = self.lib
        lib.dnnl_version.restype = ctypes.c_void_p
        lib.dnnl_primitive_desc_query_md.restype = ctypes.c_void_p
        lib.dnnl_primitive_desc_query_md.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        version = ctypes.cast(lib.dnnl_version(), ctypes.POINTER(ctypes.c_int * 4)).contents
        self.version = f"{version[0]}.{version[1]}.{version[2]}"
        runtime = ctypes.cast(lib.dnnl_version(), ctypes.POINTER(ctypes.c_uint * 8)).contents
        self.runtime = RUNTIMES.get(runtime[6], str(runtime[6]))  # after 3 ints, padding and the hash pointer
        self.engine, self.stream = ctypes.c_void_p(), ctypes.c_void_p()
        self.call("dnnl_engine_create", ctypes.byref(self.engine), ENGINE_CPU, ctypes.c_size_t(0))
        self.call("dnnl_stream_create", ctypes.byref(self.stream), self.engine, STREAM_IN_ORDER)
        self.keep: list[Any] = []

    def openmp_region(self) -> None:
        self.omp.GOMP_parallel(self._noop, None, ctypes.c_uint(self.threads), ctypes.c_uint(0))

    def call(self, name: str, *args: Any) -> None:
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise RuntimeError(f"{name} failed with dnnl_status_t {status}")

    def md(self, dims: tuple[int, ...], tag: int) -> ctypes.c_void_p:
        md = ctypes.c_void_p()
        self.call("dnnl_memory_desc_create_with_tag", ctypes.byref(md), len(dims), Dims(*dims), F32, tag)
        return md

    def memory(self, md: Any, data: np.ndarray | None = None) -> ctypes.c_void_p:
        memory = ctypes.c_void_p()
        handle = ctypes.c_void_p(data.ctypes.data) if data is not None else MEMORY_ALLOCATE
        self.call("dnnl_memory_create", ctypes.byref(memory), md, self.engine, handle)
        self.keep.append((memory, data))
        return memory

    def primitive(self, pd: ctypes.c_void_p) -> ctypes.c_void_p:
        primitive = ctypes.c_void_p()
        self.call("dnnl_primitive_create", ctypes.byref(primitive), pd)
        self.keep.append(primitive)
        return primitive

    def execute(self, primitive: Any, args: list[tuple[int, Any]]) -> None:
        array = (ExecArg * len(args))(*[ExecArg(a, m) for a, m in args])
        self.call("dnnl_primitive_execute", primitive, self.stream, len(args), array)
        self.call("dnnl_stream_wait", self.stream)

    def reorder(self, src_md: Any, src: Any, dst_md: Any, dst: Any) -> None:
        pd = ctypes.c_void_p()
        self.call("dnnl_reorder_primitive_desc_create", ctypes.byref(pd), src_md, self.engine, dst_md, self.engine,
                  None)
        self.execute(self.primitive(pd), [(ARG_SRC, src), (ARG_DST, dst)])

    def convolution(self, conv: Conv, seed: int) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((1, conv.c, conv.h, conv.w), dtype=np.float32)
        weights = rng.standard_normal((conv.k, conv.c, conv.kh, conv.kw), dtype=np.float32)
        weights /= math.sqrt(conv.c * conv.kh * conv.kw)
        bias = rng.standard_normal(conv.k, dtype=np.float32)
        out = np.zeros((1, conv.k, conv.oh, conv.ow), np.float32)
        src_md = self.md(x.shape, TAG_NCHW16C if conv.c % 16 == 0 else TAG_NCHW)
        dst_md = self.md(out.shape, TAG_NCHW16C)
        any_weights = self.md(weights.shape, TAG_ANY)
        bias_md = self.md(bias.shape, 2)  # dnnl_a
        pd = ctypes.c_void_p()
        stride, pad, dilation = Dims(conv.stride, conv.stride), Dims(conv.pad, conv.pad), Dims(0, 0)
        start = time.perf_counter()
        self.call("dnnl_convolution_forward_primitive_desc_create", ctypes.byref(pd), self.engine, FORWARD_INFERENCE,
                  CONV_DIRECT, src_md, any_weights, bias_md, dst_md, stride, dilation, pad, pad, None)
        primitive = self.primitive(pd)
        create_ms = (time.perf_counter() - start) * 1e3
        impl = ctypes.c_char_p()
        self.call("dnnl_primitive_desc_query", pd, QUERY_IMPL_INFO_STR, 0, ctypes.byref(impl))
        weights_md = self.lib.dnnl_primitive_desc_query_md(pd, QUERY_WEIGHTS_MD, 0)
        src, dst = self.memory(src_md), self.memory(dst_md)
        wei = self.memory(ctypes.c_void_p(weights_md))
        self.reorder(self.md(x.shape, TAG_NCHW), self.memory(self.md(x.shape, TAG_NCHW), x), src_md, src)
        self.reorder(self.md(weights.shape, TAG_OIHW), self.memory(self.md(weights.shape, TAG_OIHW), weights),
                     ctypes.c_void_p(weights_md), wei)
        args = [(ARG_SRC, src), (ARG_WEIGHTS, wei), (ARG_BIAS, self.memory(bias_md, bias)), (ARG_DST, dst)]
        self.execute(primitive, args)
        plain = self.md(out.shape, TAG_NCHW)
        self.reorder(dst_md, dst, plain, self.memory(plain, out))
        expected = reference_conv(x, weights, bias, conv)
        rel_l2 = float(np.linalg.norm(out - expected) / np.linalg.norm(expected))
        self.current = (primitive, args)
        return {"impl": (impl.value or b"?").decode(), "create_ms": create_ms, "rel_l2": rel_l2,
                "threads_after_conv": thread_count(), "thread_names": thread_names()}

    def time(self, runs: int, after_openmp: bool) -> list[float]:
        primitive, args = self.current
        array = (ExecArg * len(args))(*[ExecArg(a, m) for a, m in args])
        samples = []
        for _ in range(2):  # warm-up, untimed (caches, a pool that fell asleep during the other library's block)
            self.call("dnnl_primitive_execute", primitive, self.stream, len(args), array)
            self.call("dnnl_stream_wait", self.stream)
        for _ in range(runs):
            if after_openmp:
                self.openmp_region()
            start = time.perf_counter()
            self.call("dnnl_primitive_execute", primitive, self.stream, len(args), array)
            self.call("dnnl_stream_wait", self.stream)
            samples.append((time.perf_counter() - start) * 1e3)
        return samples


class ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", ctypes.c_void_p)]


def worker(path: str, openmp: str, threads: int) -> int:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    threads_at_start = thread_count()
    try:
        library = Library(path, openmp, threads)
    except (OSError, AttributeError, RuntimeError) as error:
        protocol.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
        return 0
    protocol.write(json.dumps({"version": library.version, "runtime": library.runtime,
                               "threads_at_start": threads_at_start,
                               "threads_after_openmp": library.threads_after_openmp}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if "conv" in request:
            answer = library.convolution(Conv(**request["conv"]), request["seed"])
        elif "runs" in request:
            answer = {"ms": library.time(request["runs"], request["after_openmp"])}
        else:
            break
        protocol.write(json.dumps(answer) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# The parent
# ---------------------------------------------------------------------------------------------------------------


class Worker:
    def __init__(self, label: str, path: Path, openmp: str, threads: int) -> None:
        self.label = label
        env = dict(os.environ, OMP_NUM_THREADS=str(threads),
                   LD_LIBRARY_PATH=os.pathsep.join(filter(None, [str(path.parent), os.environ.get("LD_LIBRARY_PATH")])))
        opencl = path.parent / "libintelocl.so"  # a SYCL build's CPU device: the OpenCL CPU runtime
        if opencl.exists():
            env["OCL_ICD_FILENAMES"] = str(opencl)
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(path), "--openmp", openmp, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self.receive()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        return json.loads(line) if line else {"error": f"the worker exited with code {self.process.wait()}"}

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self.process.stdin is not None and self.process.poll() is None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def default_libraries() -> list[str]:
    libraries = []
    try:
        from woodpecker.runtime.cpu.onednn import library_path

        project = library_path()
        if project is not None:
            libraries.append(f"3.2-gomp={project}")
    except ImportError:
        pass
    scratch = Path("/work/onednn-venv/lib/libdnnl.so.3")
    if scratch.exists():
        libraries.append(f"3.13-tbb={scratch}")
    return libraries


def default_openmp() -> str:
    try:
        from woodpecker.runtime.shared_libs import openmp_runtime

        found = openmp_runtime()
        return str(found) if found else "libiomp5.so"
    except ImportError:
        return "libiomp5.so"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", action="append", metavar="LABEL=PATH", help="a libdnnl.so to time (repeatable)")
    parser.add_argument("--model", type=Path, default=Path(os.environ.get("WPK_MODELS_DIR", "/work/models"))
                        / "resnet50.onnx")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--limit", type=int, default=0, help="only the first N distinct convolutions")
    parser.add_argument("--openmp", default=None, help="the libiomp5.so the workers load first")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    openmp = args.openmp or default_openmp()
    if args.worker:
        return worker(args.worker, openmp, args.threads)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_peers import load_line, machine_load

    before = machine_load()
    print(load_line("before", before), flush=True)
    libraries = [item.split("=", 1) for item in (args.lib or default_libraries())]
    workers = []
    for label, path in libraries:
        started = Worker(label, Path(path), openmp, args.threads)
        if "error" in started.info:
            print(f"{label}: cannot load {path}: {started.info['error']}")
            started.close()
            continue
        info = started.info
        print(f"{label}: oneDNN {info['version']} ({info['runtime']} runtime) from {path}; threads: "
              f"{info['threads_at_start']} at start, {info['threads_after_openmp']} after an OpenMP region")
        workers.append(started)
    convs = distinct_convs(args.model)[: args.limit or None]
    print(f"{args.model.name}: {len(convs)} distinct convolutions; {args.threads} threads, {args.rounds} rounds x "
          f"{args.runs} runs of each library, interleaved\n")
    rows = []
    for index, conv in enumerate(convs):
        created = {w.label: w.ask({"conv": asdict(conv), "seed": index}) for w in workers}
        samples: dict[tuple[str, bool], list[float]] = {(w.label, m): [] for w in workers for m in (False, True)}
        for _ in range(args.rounds):
            for after_openmp in (False, True):
                for w in workers:
                    samples[(w.label, after_openmp)] += w.ask({"runs": args.runs, "after_openmp": after_openmp})["ms"]
                    time.sleep(0.25)  # the previous library's threads stop spinning
        row = {"conv": conv.label(), "count": conv.count, "libraries": {}}
        for w in workers:
            alone = samples[(w.label, False)]
            row["libraries"][w.label] = {**created[w.label], "median_ms": statistics.median(alone),
                                         "p10_ms": float(np.percentile(alone, 10)),
                                         "after_openmp_ms": statistics.median(samples[(w.label, True)])}
        rows.append(row)
        print(_row(row, [w.label for w in workers]), flush=True)
    labels = [w.label for w in workers]
    after = machine_load()
    print(load_line("after", after))
    print()
    print(_header(labels))
    for row in rows:
        print(_row(row, labels))
    if len(labels) == 2:
        a, b = labels
        for key, what in (("median_ms", "alone, medians"), ("p10_ms", "alone, 10th percentiles"),
                          ("after_openmp_ms", "after an OpenMP region, medians")):
            ratios = [row["libraries"][b][key] / row["libraries"][a][key] for row in rows]
            weighted = (sum(row["count"] * row["libraries"][b][key] for row in rows)
                        / sum(row["count"] * row["libraries"][a][key] for row in rows))
            print(f"{b} / {a} ({what}): geometric mean {statistics.geometric_mean(ratios):.3f} over {len(rows)} "
                  f"convolutions, {weighted:.3f} weighted by the model's counts (its conv time)")
    for w in workers:
        threads = {row["libraries"][w.label]["threads_after_conv"] for row in rows}
        print(f"{w.label}: threads after its convolutions {sorted(threads)} (after the OpenMP region: "
              f"{w.info['threads_after_openmp']}); their names: {rows[-1]['libraries'][w.label]['thread_names']}")
        w.close()
    if args.json:
        args.json.write_text(json.dumps({"libraries": {w.label: w.info for w in workers}, "threads": args.threads,
                                         "load_before": before, "load_after": after, "rows": rows}, indent=2))
    return 0


def _header(labels: list[str]) -> str:
    cols = ["conv", "n"]
    for label in labels:
        cols += [f"{label} impl", f"{label} ms", f"{label} p10 ms", f"{label} ms after OpenMP", f"{label} rel L2"]
    if len(labels) == 2:
        cols += [f"{labels[1]} / {labels[0]}", "ratio of p10", "ratio after OpenMP"]
    return "| " + " | ".join(cols) + " |\n|" + "|".join(["---"] * len(cols)) + "|"


def _row(row: dict[str, Any], labels: list[str]) -> str:
    cells = [row["conv"], str(row["count"])]
    for label in labels:
        lib = row["libraries"][label]
        cells += [lib["impl"], f"{lib['median_ms']:.3f}", f"{lib['p10_ms']:.3f}", f"{lib['after_openmp_ms']:.3f}",
                  f"{lib['rel_l2']:.1e}"]
    if len(labels) == 2:
        a, b = (row["libraries"][label] for label in labels)
        cells += [f"{b[key] / a[key]:.3f}" for key in ("median_ms", "p10_ms", "after_openmp_ms")]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    sys.exit(main())
