"""One inference engine in a worker process of its own, for bench/bench_peers.py.

    python bench/peer_engines.py SPEC.json

SPEC.json: {"engine", "model" (an .onnx path), "feeds" (an .npz of the seeded inputs), "threads",
"outputs" (where to write this engine's outputs, .npz), "woodpecker" (options, see WoodpeckerOptions)}.

The worker answers on its standard output, one JSON object a line (whatever an engine prints goes
to the standard error, which the parent sends to a log file):

    {"status": "ready", "compile_s": ..., "first_run_ms": ..., "version": ..., "os_threads": ...}
                                                      loaded and run once (os_threads: the process's threads then)
    {"status": "not installed", "detail": ...}                                    the engine does not import
    {"status": "failed", "detail": ...}                                           it imports but cannot run the model

then, for each line "run N [W]" it reads (W untimed warm-up runs first), {"ms": [N latencies]};
"quit" (or the end of the input) ends it.
The thread count is set in the environment by the parent (OMP_NUM_THREADS, TVM_NUM_THREADS, ...) and
passed to each engine's own knob here.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

Runner = Callable[[], list[np.ndarray]]


class NotInstalled(Exception):
    """The engine's Python package does not import."""


@dataclass
class Loaded:
    run: Runner
    version: str
    compile_s: float


@dataclass
class WoodpeckerOptions:
    """--woodpecker-options of bench_peers.py: KEY=VALUE pairs, comma-separated."""

    opt_level: int = 2
    db: str | None = None  # tuning records: the tuned plan
    schedule: str | None = None  # a schedule file (JSON, as for wpk run --schedule)
    no_records: bool = False
    libraries: str = "all"
    select: str = "records"
    layout: str = "auto"  # CompileOptions.layout: auto, nchw, blocked or blocked<N>

    @classmethod
    def parse(cls, text: str) -> WoodpeckerOptions:
        options = cls()
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if key == "no_records" and not sep:
                options.no_records = True
            elif key == "opt_level" and value in ("0", "1", "2"):
                options.opt_level = int(value)
            elif key in ("db", "schedule", "libraries", "select", "layout") and value:
                setattr(options, key, value)
            else:
                raise ValueError(
                    f"bad --woodpecker-options item '{item}': expected opt_level=0|1|2, db=PATH, schedule=FILE, "
                    "libraries=..., select=records|measure|heuristic, layout=auto|nchw|blocked or no_records"
                )
        return options


def load_woodpecker(model: Path, feeds: dict[str, np.ndarray], threads: int, config: dict[str, Any]) -> Loaded:
    try:
        import woodpecker
        from woodpecker.backend.cpu import CpuOptions
    except ImportError as error:
        raise NotInstalled(str(error)) from None
    opts = WoodpeckerOptions(**config)
    options = woodpecker.CompileOptions(
        opt_level=opts.opt_level,
        cpu=CpuOptions(parallel=threads > 1, threads=threads),
        use_tuning_records=not opts.no_records,
        tuning_db=opts.db,
        libraries=opts.libraries,
        select=opts.select,
        layout=opts.layout,
    )
    if opts.schedule:
        from woodpecker.targets.schedule_pass import load_request

        options.cpu.schedules = load_request(opts.schedule).kernels
    start = time.perf_counter()
    shapes = {name: tuple(array.shape) for name, array in feeds.items()}
    compiled = woodpecker.compile(str(model), input_shapes=shapes, options=options)
    compile_s = time.perf_counter() - start
    from importlib.metadata import version

    return Loaded(lambda: compiled.run(None, feeds), version("woodpecker"), compile_s)


def load_onnxruntime(model: Path, feeds: dict[str, np.ndarray], threads: int, config: dict[str, Any]) -> Loaded:
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise NotInstalled(str(error)) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    start = time.perf_counter()
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    compile_s = time.perf_counter() - start
    return Loaded(lambda: session.run(None, feeds), ort.__version__, compile_s)


def load_openvino(model: Path, feeds: dict[str, np.ndarray], threads: int, config: dict[str, Any]) -> Loaded:
    try:
        import openvino as ov
    except ImportError as error:
        raise NotInstalled(str(error)) from None
    core = ov.Core()
    start = time.perf_counter()
    compiled = core.compile_model(
        core.read_model(str(model)),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        },
    )
    request = compiled.create_infer_request()
    compile_s = time.perf_counter() - start
    names = [port.any_name for port in compiled.inputs]
    inputs = [feeds[name] for name in names]
    outputs = compiled.outputs

    def run() -> list[np.ndarray]:
        result = request.infer(inputs)
        return [np.array(result[port]) for port in outputs]

    return Loaded(run, ov.get_version(), compile_s)


def load_iree(model: Path, feeds: dict[str, np.ndarray], threads: int, config: dict[str, Any]) -> Loaded:
    try:
        import iree.compiler as ireec
        import iree.runtime as ireert
        from iree.compiler.tools.import_onnx import __main__ as import_onnx
    except ImportError as error:
        raise NotInstalled(str(error)) from None
    import onnx

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        mlir = Path(scratch) / "model.mlir"
        import_onnx.main(import_onnx.parse_arguments([str(model), "-o", str(mlir)]))
        vmfb = ireec.compile_file(
            str(mlir), target_backends=["llvm-cpu"], extra_args=["--iree-llvmcpu-target-cpu=host"]
        )
    # The task topology: one group (thread) per requested thread, set before the driver is created.
    ireert.flags.parse_flags(f"--task_topology_group_count={threads}")
    runtime_config = ireert.Config("local-task")
    context = ireert.SystemContext(config=runtime_config)
    context.add_vm_module(ireert.VmModule.copy_buffer(context.instance, vmfb))
    graph = onnx.load(str(model), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    names = [value.name for value in graph.input if value.name not in initializers]
    function = context.modules.module[graph.name if graph.name else "main_graph"]
    inputs = [feeds[name] for name in names]
    compile_s = time.perf_counter() - start

    def run() -> list[np.ndarray]:
        result = function(*inputs)
        results = result if isinstance(result, tuple | list) else [result]
        return [np.asarray(r.to_host()) for r in results]

    from importlib.metadata import version

    return Loaded(run, version("iree-base-compiler"), compile_s)


def load_tvm(model: Path, feeds: dict[str, np.ndarray], threads: int, config: dict[str, Any]) -> Loaded:
    try:
        import tvm
        from tvm import relax
        from tvm.relax.frontend.onnx import from_onnx
    except ImportError as error:
        raise NotInstalled(str(error)) from None
    import onnx

    start = time.perf_counter()
    proto = onnx.load(str(model))
    shapes = {name: list(array.shape) for name, array in feeds.items()}
    dtypes = {name: str(array.dtype) for name, array in feeds.items()}
    mod = from_onnx(proto, shape_dict=shapes, dtype_dict=dtypes, keep_params_in_input=False)
    target = tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu()})
    # TVM's default Relax pipeline for the target, untuned (no MetaSchedule records).
    executable = tvm.compile(mod, target=target)
    device = tvm.cpu()
    vm = relax.VirtualMachine(executable, device)
    names = [value.name for value in proto.graph.input if value.name in feeds]
    to_device = tvm.runtime.tensor if hasattr(tvm.runtime, "tensor") else tvm.nd.array
    inputs = [to_device(feeds[name], device) for name in names]
    compile_s = time.perf_counter() - start

    def run() -> list[np.ndarray]:
        result = vm["main"](*inputs)
        results = result if isinstance(result, tuple | list) or hasattr(result, "__len__") else [result]
        if hasattr(result, "numpy"):
            results = [result]
        return [np.asarray(r.numpy()) for r in results]

    return Loaded(run, tvm.__version__, compile_s)


ENGINES: dict[str, Callable[[Path, dict[str, np.ndarray], int, dict[str, Any]], Loaded]] = {
    "woodpecker": load_woodpecker,
    "onnxruntime": load_onnxruntime,
    "openvino": load_openvino,
    "iree": load_iree,
    "tvm": load_tvm,
}


def one_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


def serve(spec: dict[str, Any], answer: Callable[[dict[str, Any]], None]) -> None:
    with np.load(spec["feeds"]) as data:
        feeds = {name: data[name] for name in data.files}
    try:
        loaded = ENGINES[spec["engine"]](Path(spec["model"]), feeds, int(spec["threads"]), spec.get("woodpecker", {}))
        start = time.perf_counter()
        outputs = loaded.run()
        first_ms = (time.perf_counter() - start) * 1e3
        np.savez(spec["outputs"], *[np.asarray(o) for o in outputs])
    except NotInstalled as error:
        answer({"status": "not installed", "detail": str(error).splitlines()[0][:300]})
        return
    except Exception as error:  # any engine failure is one line for the table, the traceback in the log
        import traceback

        traceback.print_exc()
        answer({"status": "failed", "detail": one_line(error)})
        return
    answer({"status": "ready", "compile_s": loaded.compile_s, "first_run_ms": first_ms, "version": loaded.version,
            "os_threads": len(os.listdir("/proc/self/task"))})
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            return
        for _ in range(int(command[2]) if len(command) > 2 else 0):  # untimed warm-up runs
            loaded.run()
        samples = []
        for _ in range(int(command[1])):
            start = time.perf_counter()
            loaded.run()
            samples.append((time.perf_counter() - start) * 1e3)
        answer({"ms": samples})


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    # The protocol keeps the original stdout; what the engines print goes to stderr (the log).
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    serve(spec, answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
