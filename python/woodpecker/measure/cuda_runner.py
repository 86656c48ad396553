"""Measuring CUDA kernel candidates: on this machine's GPU (`CudaRunner`), or exported as a
batch for a GPU host (`export_candidates`, then `wpk measure DIR` there, `read_results` here).

`CudaRunner` implements the tuner's `Runner` protocol: each configuration is compiled alone
(`cuda_tasks.compile_candidate`), saved to a scratch directory and launched with
`woodpecker.runtime.cuda.launch.CudaLauncher` on seeded random inputs; the first configuration of a task
that runs (the tuner measures the default first) is the reference whose outputs the others
must reproduce. A compile error, a CUDA error or a wrong output becomes `MeasureResult.error`.

By default the candidates run in this process: fast, but a hanging kernel hangs the tuner and a
sticky CUDA fault (illegal address, ...) leaves the context unusable, after which every later
candidate gets an error saying so. `isolate=True` measures each batch of configurations through
`woodpecker.measure.batch` instead: one subprocess per candidate, with a timeout.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from woodpecker.gpu.arch import ARCHS
from woodpecker.gpu.tasks import compile_candidate, space_for
from woodpecker.kernels.decision import IMPL_KNOB, Decision, config_of
from woodpecker.kernels.task import Config, KernelTask, MeasureResult
from woodpecker.measure.batch import (
    BATCH_FILE,
    DEFAULT_ATOL,
    DEFAULT_REPEAT,
    DEFAULT_RTOL,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WARMUP,
    REFERENCE_FILE,
    BatchError,
    Candidate,
    Log,
    compare_outputs,
    export_batch,
    load_reference,
    measure_batch,
    measure_model_dir,
    random_inputs,
    read_results,
)
from woodpecker.runtime.cuda import launch

NO_DEVICE_HINT = "use `wpk tune --target cuda --export DIR` and `wpk measure DIR` on a GPU host"


def _compile_error(err: BaseException) -> str:
    return f"compile error: {type(err).__name__}: {err}"


def compile_candidates(task: KernelTask, configs: Sequence[Config], arch: str, ids: Sequence[int]) -> list[Candidate]:
    """Compiles each configuration of `task` for `arch`; a failure becomes `Candidate.error`."""
    out = []
    for cid, config in zip(ids, configs, strict=True):
        start = time.perf_counter()
        try:
            model = compile_candidate(task, config, arch)
            out.append(Candidate(cid, dict(config), model, compile_seconds=time.perf_counter() - start))
        except Exception as err:
            out.append(Candidate(cid, dict(config), None, _compile_error(err), time.perf_counter() - start))
    return out


def _default_id(task: KernelTask, configs: Sequence[Config], ids: Sequence[int], arch: str) -> int | None:
    """The id of the configuration equal to the space's default, if any."""
    try:
        space = space_for(task, arch)
    except Exception:
        return None
    for cid, config in zip(ids, configs, strict=True):
        if space.complete(config) == space.default:
            return cid
    return None


def export_candidates(
    task: KernelTask,
    configs: Sequence[Config],
    directory: str | os.PathLike,
    arch: str = "sm_90",
    *,
    ids: Sequence[int] | None = None,
    reference: int | None = None,
    reference_outputs: Sequence[np.ndarray] | None = None,
    seed: int = 0,
) -> Path:
    """Compiles `configs` of `task` for `arch` and writes them as a batch into `directory`
    (`wpk measure DIR` measures it; `batch.read_results(DIR)` reads the results by id).
    `ids` default to 0..n-1 (pass Optuna trial numbers). The reference is `reference`, else the
    default configuration when it is among `configs`, else the first that compiled (unless
    `reference_outputs` are given). Configurations that do not compile are listed with their
    error and come back as failed results."""
    ids = list(range(len(configs))) if ids is None else [int(i) for i in ids]
    if len(ids) != len(configs):
        raise ValueError(f"{len(ids)} ids for {len(configs)} configurations")
    if (Path(directory) / BATCH_FILE).exists():
        raise BatchError(f"{directory} already holds a batch ({BATCH_FILE}); export into a new directory")
    candidates = compile_candidates(task, configs, arch, ids)
    compiled = {c.id for c in candidates if c.error is None}
    if reference is None and reference_outputs is None:
        default = _default_id(task, configs, ids, arch)
        reference = default if default in compiled else None
    return export_batch(
        directory, task, candidates, arch=arch, reference=reference, seed=seed, reference_outputs=reference_outputs
    )


class CudaRunner:
    """Measures configurations of CUDA kernel tasks on local GPU `device` (the `Runner`
    protocol). `arch` defaults to the device's (`sm_XY`, one of `woodpecker.gpu.ARCHS`)."""

    def __init__(
        self,
        arch: str | None = None,
        *,
        device: int = 0,
        repeat: int = DEFAULT_REPEAT,
        warmup: int = DEFAULT_WARMUP,
        rtol: float = DEFAULT_RTOL,
        atol: float = DEFAULT_ATOL,
        flush_l2: bool = True,
        isolate: bool = False,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        seed: int = 0,
        log: Log | None = None,
    ):
        reason = launch.cuda_status(device)
        if reason is not None:
            raise RuntimeError(f"no CUDA device: {NO_DEVICE_HINT} ({reason})")
        self.info = launch.device_info(device)
        self.arch = arch or self.info.arch
        if self.arch not in ARCHS:
            raise RuntimeError(
                f"{self.info.name} is {self.info.arch}, which the GPU backend does not compile for; pass arch= "
                f"one of {', '.join(ARCHS)} that the device can run"
            )
        self.device = device
        self.repeat, self.warmup = repeat, warmup
        self.rtol, self.atol = rtol, atol
        self.flush_l2 = flush_l2
        self.isolate = isolate
        self.timeout_s = timeout_s
        self.seed = seed
        self.log = log
        self._references: dict[str, list[np.ndarray]] = {}
        self._broken: str | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="wpk-cuda-runner-")
        self._counter = itertools.count()

    @property
    def device_name(self) -> str:
        return self.info.name

    def reference_outputs(self, task: KernelTask) -> list[np.ndarray] | None:
        """The outputs the task's candidates are checked against (None before the first run)."""
        return self._references.get(task.key)

    def measure(self, task: KernelTask, configs: Sequence[Config | Decision]) -> list[MeasureResult]:
        """Times each candidate: a generated kernel's knobs (`Generated`), or a `Library` call
        (`{"impl": "cudnn"|"cublas"}`) that computes the task (measured in this process either way)."""
        if self._scratch is None:
            raise RuntimeError("CudaRunner.measure after close()")
        configs = [c if isinstance(c, dict) else config_of(c) for c in configs]
        libraries = {i: c for i, c in enumerate(configs) if IMPL_KNOB in c}
        generated = [c for i, c in enumerate(configs) if i not in libraries]
        if self.isolate:
            measured = iter(self._measure_isolated(task, generated) if generated else [])
        else:
            measured = iter([self._measure_one(task, config) for config in generated])
        return [
            self._measure_library(task, configs[i]) if i in libraries else next(measured) for i in range(len(configs))
        ]

    def _measure_library(self, task: KernelTask, config: Config) -> MeasureResult:
        """The task's kernel as a one-step plan calling `config["impl"]` (cuDNN, cuBLASLt), run
        by the plan executor on the same seeded inputs and weights as the generated candidates,
        checked against the task's reference outputs, timed the same way (events, L2 flush)."""
        from woodpecker.gpu.inference_plan import KernelImpl, build_inference_plan
        from woodpecker.gpu.library_match import library_match
        from woodpecker.gpu.split_epilogue import library_epilogue
        from woodpecker.runtime.cuda.executor import PlanExecutor
        from woodpecker.runtime.cuda.plan import LibraryStep, pack_weights

        library = str(config[IMPL_KNOB])
        start = time.perf_counter()
        match = library_match(task, library)
        if isinstance(match, str):
            return MeasureResult(dict(config), error=f"{library} does not apply: {match}")
        try:
            model = compile_candidate(task, None, self.arch)  # the library step's fallback kernels
            name = task.kernel_name
            n_inputs = len(model.input_names)

            def arg_buffer(arg: int) -> str:
                return f"input[{arg}]" if arg < n_inputs else f"weight[{arg - n_inputs}]"

            operands = {role: arg_buffer(arg) for role, arg in match.roles.items()}
            step = LibraryStep(library, dict(match.spec), {**operands, "y": "output[0]"})
            step.epilogue = library_epilogue(task, step, self.arch, name, arg_buffer)
            impls = {name: KernelImpl(step, "measured")}
            plan = build_inference_plan(model.program, model.input_names, model.output_names, impls)
        except Exception as err:
            return MeasureResult(dict(config), error=_compile_error(err), compile_seconds=time.perf_counter() - start)
        compile_seconds = time.perf_counter() - start
        if self._broken is not None:
            return self._not_measured(config, compile_seconds)
        times: list[float] = []
        error = None
        try:
            with PlanExecutor(plan, pack_weights(plan, model.weights), self.device, use_graph=False) as executor:
                if executor.fallbacks:
                    error = f"{library} cannot run it here: {executor.fallbacks[name]}"
                else:
                    inputs = random_inputs([model.input_shapes[n] for n in model.input_names], self.seed)
                    outputs = executor.run(dict(zip(model.input_names, inputs, strict=True)))
                    reference = self._references.get(task.key)
                    if reference is not None:
                        got = [outputs[n] for n in model.output_names]
                        error = compare_outputs(got, reference, self.rtol, self.atol)
                    if error is None:
                        times = executor.time(repeat=self.repeat, warmup=self.warmup, flush_l2=self.flush_l2)
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            if getattr(err, "sticky", False):
                self._broken = error
        if self.log is not None:
            self.log(f"{task.key} {config}: {error or f'{np.median(times) * 1e3:.4f} ms'}")
        return MeasureResult(dict(config), times, error, compile_seconds)

    def _not_measured(self, config: Config, compile_seconds: float) -> MeasureResult:
        error = f"not measured: the CUDA context is unusable after an earlier fault ({self._broken})"
        return MeasureResult(dict(config), error=error, compile_seconds=compile_seconds)

    def _measure_one(self, task: KernelTask, config: Config) -> MeasureResult:
        start = time.perf_counter()
        try:
            model = compile_candidate(task, config, self.arch)
        except Exception as err:
            return MeasureResult(dict(config), error=_compile_error(err), compile_seconds=time.perf_counter() - start)
        compile_seconds = time.perf_counter() - start
        if self._broken is not None:
            return self._not_measured(config, compile_seconds)
        assert self._scratch is not None
        model_dir = model.save_kernels(Path(self._scratch.name) / f"c{next(self._counter)}")
        try:
            run = measure_model_dir(
                model_dir,
                seed=self.seed,
                reference=self._references.get(task.key),
                repeat=self.repeat,
                warmup=self.warmup,
                rtol=self.rtol,
                atol=self.atol,
                flush_l2=self.flush_l2,
                device=self.device,
            )
        finally:
            shutil.rmtree(model_dir, ignore_errors=True)
        if run.sticky:
            self._broken = run.error
        if run.error is None and task.key not in self._references and run.outputs is not None:
            self._references[task.key] = run.outputs
        if self.log is not None:
            self.log(f"{task.key} {config}: {run.error or f'{np.median(run.times) * 1e3:.4f} ms'}")
        return MeasureResult(dict(config), run.times, run.error, compile_seconds)

    def _measure_isolated(self, task: KernelTask, configs: Sequence[Config]) -> list[MeasureResult]:
        assert self._scratch is not None
        directory = Path(self._scratch.name) / f"batch{next(self._counter)}"
        ids = list(range(len(configs)))
        candidates = compile_candidates(task, configs, self.arch, ids)
        known = self._references.get(task.key)
        export_batch(directory, task, candidates, arch=self.arch, seed=self.seed, reference_outputs=known)
        try:
            measure_batch(
                directory,
                repeat=self.repeat,
                warmup=self.warmup,
                timeout_s=self.timeout_s,
                rtol=self.rtol,
                atol=self.atol,
                isolate=True,
                flush_l2=self.flush_l2,
                device=self.device,
                log=self.log,
            )
            results = read_results(directory)
            if known is None and (directory / REFERENCE_FILE).exists():
                self._references[task.key] = load_reference(directory / REFERENCE_FILE) or []
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        out = []
        for cid, config in zip(ids, configs, strict=True):
            result = results.get(cid) or MeasureResult(dict(config), error="not measured")
            result.config = dict(config)
            out.append(result)
        return out

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> CudaRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
