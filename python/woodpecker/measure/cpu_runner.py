"""Measuring CPU candidates: compile a kernel's standalone module with one configuration,
run it through the MLIR ExecutionEngine, time it, and check its output.

`InProcessCpuRunner` does this in the calling process. `IsolatedCpuRunner` (the default for
tuning) does it in a worker subprocess (`python -m woodpecker.measure.cpu_worker`) with a
timeout, so a candidate that crashes, hangs or exhausts memory fails its trial and tuning
goes on with a fresh worker.

Inputs and weights are random normal values (never zeros) drawn from a fixed seed. The first
configuration a runner measures for a task should be the default (the tuner does this); its
output is the reference every other candidate of the task must match (`rtol`, `atol`
relative to the reference's largest magnitude).
"""

from __future__ import annotations

import gc
import json
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from woodpecker.kernels.decision import Decision, config_of
from woodpecker.kernels.task import Config, KernelTask, MeasureResult
from woodpecker.measure.task_json import task_to_json


@dataclass(frozen=True)
class CpuMeasureOptions:
    """How candidates are timed on the CPU."""

    warmup: int = 1
    repeat: int = 5  # at least this many timed runs per block ...
    min_seconds: float = 0.03  # ... and more (up to max_repeat) until this much time was timed
    max_repeat: int = 50
    pairs: int = 2  # blocks of the candidate, each after a block of the default (relative timing)
    parallel: bool = True
    threads: int | None = None  # None: every core this process may use
    llvm_opt_level: int = 3
    rtol: float = 1e-3
    atol: float = 1e-4  # times the reference's largest magnitude
    seed: int = 0

    def __post_init__(self) -> None:
        if self.repeat < 1 or self.max_repeat < self.repeat:
            raise ValueError(f"repeat must be >= 1 and <= max_repeat, got {self.repeat} and {self.max_repeat}")
        if self.pairs < 1:
            raise ValueError(f"pairs must be >= 1, got {self.pairs}")
        if self.warmup < 0 or self.min_seconds < 0:
            raise ValueError("warmup and min_seconds must be >= 0")


@dataclass
class _TaskState:
    """What a runner keeps per task: the arrays it feeds and the reference output."""

    inputs: list[np.ndarray]
    weights: list[np.ndarray]
    reference: np.ndarray | None = None
    default_call: Callable[[], None] | None = None  # the default configuration, for relative timing
    keep: list = field(default_factory=list)


def as_config(candidate: Config | Decision) -> Config:
    """A candidate as the JSON configuration the worker protocol carries (`{"impl": ...}` for a
    library call)."""
    return dict(candidate) if isinstance(candidate, dict) else config_of(candidate)


_ARG_ELEMENT = re.compile(r"%\w+: tensor<(?:[0-9]+x)*(f32|i64|i32|i8)>")
_ARG_DTYPES = {"f32": np.float32, "i64": np.int64, "i32": np.int32, "i8": np.bool_}


def arg_dtypes(task: KernelTask) -> list[np.dtype]:
    """The numpy dtype of each argument of the task's kernel function (float32, or int64/int32,
    or bool for the i8 storage of i1), read from its signature; float32 where it cannot be read."""
    for line in task.module_text.splitlines():
        if "func.func" in line and "(" in line:
            found = [np.dtype(_ARG_DTYPES[e]) for e in _ARG_ELEMENT.findall(line.split("->")[0])]
            if len(found) == len(task.arg_shapes):
                return found
    return [np.dtype(np.float32)] * len(task.arg_shapes)


def task_arrays(task: KernelTask, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random inputs and weights of the task's argument shapes and dtypes: standard normal
    float32; integers and bools 0 or 1 (valid indices and masks, in bounds for a gather)."""
    rng = np.random.default_rng(seed)
    arrays = []
    for shape, dtype in zip(task.arg_shapes, arg_dtypes(task), strict=True):
        if dtype == np.float32:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
        else:
            arrays.append(rng.integers(0, 2, shape).astype(dtype))
    split = len(arrays) - task.num_weights
    return arrays[:split], arrays[split:]


class InProcessCpuRunner:
    """Compiles and times candidates in this process (a crashing candidate takes it down)."""

    def __init__(self, options: CpuMeasureOptions | None = None):
        self.options = options or CpuMeasureOptions()
        self._tasks: dict[str, _TaskState] = {}

    def measure(self, task: KernelTask, configs: Sequence[Config | Decision]) -> list[MeasureResult]:
        return [self.measure_one(task, as_config(config)) for config in configs]

    def measure_one(self, task: KernelTask, config: Config) -> MeasureResult:
        state = self._tasks.get(task.key)
        if state is None:
            inputs, weights = task_arrays(task, self.options.seed)
            state = self._tasks[task.key] = _TaskState(inputs, weights)
        try:
            return _measure(task, config, state, self.options)
        except Exception as err:  # a bad candidate: compile error, wrong shape, ...
            return MeasureResult(dict(config), error=f"{type(err).__name__}: {err}")
        finally:
            gc.collect()  # release the engine (its JIT-ed code) before the next candidate

    def close(self) -> None:
        self._tasks.clear()


def _compile(task: KernelTask, config: Config, options: CpuMeasureOptions, weights: Sequence[np.ndarray]):
    """The task's module compiled with `config` for its kernel (a CpuExecutable); a library
    call ({"impl": "onednn"}, i.e. `Library("onednn")`) bakes in `weights`."""
    from mlir import ir

    from woodpecker.backend.cpu import CpuOptions, compile_cpu
    from woodpecker.dialect import create_context

    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(task.module_text)
        cpu = CpuOptions(
            llvm_opt_level=options.llvm_opt_level,
            parallel=options.parallel,
            threads=options.threads,
            schedules={task.kernel_name: config},
        )
        return compile_cpu(module, cpu, num_weights=task.num_weights, weights=weights)


def _measure(task: KernelTask, config: Config, state: _TaskState, options: CpuMeasureOptions) -> MeasureResult:
    start = time.perf_counter()
    executable = _compile(task, config, options, state.weights)
    compile_seconds = time.perf_counter() - start
    executable.bind_weights(state.weights)
    (output,) = executable(state.inputs)
    is_default = _is_default(executable, task)
    if state.default_call is None and not is_default:
        reference = _compile(task, {}, options, state.weights)
        reference.bind_weights(state.weights)
        state.default_call, outputs = reference.bound_call(state.inputs)
        state.default_call()
        state.reference = outputs[0]
        state.keep = [reference, outputs]
    if state.reference is None:
        state.reference = output
    else:
        finite = state.reference[np.isfinite(state.reference)]
        scale = float(np.max(np.abs(finite))) if finite.size else 1.0
        if not np.allclose(output, state.reference, rtol=options.rtol, atol=options.atol * scale, equal_nan=True):
            worst = float(np.nanmax(np.abs(output - state.reference)))
            return MeasureResult(
                dict(config),
                error=f"wrong output: max |difference| {worst:.3g} from the default's output (scale {scale:.3g})",
                compile_seconds=compile_seconds,
            )
    call, outputs = executable.bound_call(state.inputs)
    if is_default:
        if state.default_call is None:
            state.default_call, state.keep = call, [executable, outputs]
        return MeasureResult(dict(config), times=_time_block(call, options), compile_seconds=compile_seconds,
                             relative=1.0)
    # Blocks of the candidate alternate with blocks of the default: the ratio of their medians
    # holds while the machine's speed changes (this VM has a fast and a ~1.3x slower mode).
    times: list[float] = []
    default_times: list[float] = []
    for _ in range(options.pairs):
        default_times += _time_block(state.default_call, options)
        times += _time_block(call, options)
    relative = statistics.median(times) / statistics.median(default_times)
    return MeasureResult(dict(config), times=times, compile_seconds=compile_seconds, relative=relative)


def _time_block(call: Callable[[], None], options: CpuMeasureOptions) -> list[float]:
    for _ in range(options.warmup):
        call()
    times: list[float] = []
    while len(times) < options.max_repeat and (len(times) < options.repeat or sum(times) < options.min_seconds):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return times


def _is_default(executable, task: KernelTask) -> bool:
    return any(s.kernel.name == task.kernel_name and s.is_default for s in executable.schedules)


# -- isolated: a worker subprocess --------------------------------------------------------------


@dataclass
class IsolatedCpuRunner:
    """Measures each candidate in a worker subprocess with a timeout.

    The worker lives across candidates (it keeps each task's arrays and reference output); a
    candidate that times out or kills the worker fails, and the next one starts a new worker.
    `memory_limit_bytes` caps the worker's address space (None: no cap).
    """

    options: CpuMeasureOptions = field(default_factory=CpuMeasureOptions)
    timeout_s: float = 120.0
    memory_limit_bytes: int | None = None
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def measure(self, task: KernelTask, configs: Sequence[Config | Decision]) -> list[MeasureResult]:
        return [self.measure_one(task, as_config(config)) for config in configs]

    def measure_one(self, task: KernelTask, config: Config) -> MeasureResult:
        process = self._worker()
        request = {"task": task_to_json(task), "config": config, "options": asdict(self.options)}
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], self.timeout_s)
            if not ready:
                self._kill()
                return MeasureResult(dict(config), error=f"timed out after {self.timeout_s:g} s (worker killed)")
            line = process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            return MeasureResult(dict(config), error=self._death())
        reply = json.loads(line)
        if "fatal" in reply:
            return MeasureResult(dict(config), error=reply["fatal"])
        return MeasureResult.from_json(reply)

    def _worker(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        env = dict(os.environ)
        if self.memory_limit_bytes:
            env["WOODPECKER_WORKER_MEMORY"] = str(self.memory_limit_bytes)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "woodpecker.measure.cpu_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        return self._process

    def _death(self) -> str:
        process = self._process
        self._process = None
        if process is None:
            return "worker did not start"
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            return "worker stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"worker crashed ({name})"
        return f"worker exited with status {code}"

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            assert self._process.stdin is not None
            try:
                self._process.stdin.close()
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
        self._process = None
