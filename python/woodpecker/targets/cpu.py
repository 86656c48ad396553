"""The CPU target: model kernels cut from linalg, oneDNN/BLAS candidates, LLVM through the JIT.

* cut: `schedule.tasks.cpu_tasks` (the module is cut in place: every op of a kernel carries
  its name, which code generation reads back);
* library candidates: oneDNN (convolutions with their bias, residual and activation as
  post-ops, matmul, pooling) and OpenBLAS (matmul), as `libs.match` reads them off the kernel;
* heuristic: `HEURISTIC` below, from the measurements in docs/libraries.md;
* runner: `IsolatedCpuRunner` (a worker subprocess with a timeout);
* code generation: `backend.compile_cpu` with the decisions, a `CompiledModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlir import ir

from woodpecker.backend.cpu import CpuOptions, compile_cpu, thread_count
from woodpecker.backend.model import CompiledModel
from woodpecker.frontend import LoweredModel
from woodpecker.kernels.decision import GENERATED, Library
from woodpecker.kernels.target import Candidate, Cut, CutKernel, Plan, Target
from woodpecker.kernels.task import KernelTask, Runner
from woodpecker.libs.match import LIBRARIES
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.tasks import cpu_device, cpu_tasks
from woodpecker.stats import CompileStats, timed_stage

# The stated heuristic, from the measurements in docs/libraries.md (AVX2, 2 cores, ResNet-18/50
# and MobileNetV2 at batch 1): oneDNN won 27 of 34 ResNet convolutions (up to 5.8x) and most of
# MobileNetV2's; our kernels won every stride-1 convolution with >= 56x56 outputs (the wide, shallow
# early layers, up to 1.7x), every stride-1 depthwise convolution (up to 2.2x) and the pooling
# (oneDNN's plain-layout pooling was 19x slower on ResNet's max pooling).
HEURISTIC_ORDER = ("onednn", "blas", GENERATED)
# Below this, oneDNN's call and reorders cost more than our kernel (the bundled tiny ResNet's
# 1.2-MFLOP convolutions: 1.23x slower end to end with them on oneDNN).
SMALL_CONV_FLOPS = 1.5e6
HEURISTIC = (
    "the generated kernel for pooling, NCHW convolutions under 1.5 MFLOP, NCHW stride-1 convolutions with at "
    "least 56x56 outputs and NCHW stride-1 depthwise convolutions; elsewhere (every blocked convolution "
    "included) oneDNN where it applies, else BLAS for matmuls, else the generated kernel (not measured)"
)
# Kernel kinds each library has calls for; other kinds are not applicable without looking closer.
_KINDS = {
    "onednn": ("conv", "depthwise_conv", "blocked_conv", "blocked_depthwise_conv", "matmul", "pool"),
    "blas": ("matmul",),
}
_LIBRARY_NAMES = {"onednn": "oneDNN", "blas": "BLAS"}


def library_availability(library: str) -> str | None:
    """None when `library` loads here, else why not."""
    if library == "blas":
        from woodpecker.runtime.cpu import blas

        return blas.availability()
    from woodpecker.runtime.cpu import onednn

    return onednn.availability()


def applicability(task: KernelTask, libraries: Sequence[str]) -> dict[str, str | None]:
    """library -> None when it can compute the task's kernel, else why not (the task's module is
    parsed once, and only when some library has calls for the kernel's kind)."""
    reasons: dict[str, str | None] = {}
    for library in libraries:
        if task.kind not in _KINDS[library]:
            reasons[library] = f"{_LIBRARY_NAMES[library]} has no call for {task.kind} kernels"
    pending = [library for library in libraries if library not in reasons]
    if not pending:
        return reasons
    from woodpecker.dialect import create_context
    from woodpecker.graph.outline_weights import main_func
    from woodpecker.libs.match import NotApplicable, match_kernel
    from woodpecker.schedule.kernels import find_kernels

    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(task.module_text)
        kernels = [k for k in find_kernels(module) if k.name == task.kernel_name]
        first_weight = len(main_func(module).regions[0].blocks[0].arguments) - task.num_weights
        for library in pending:
            if not kernels:
                reasons[library] = f"the task has no kernel {task.kernel_name}"
                continue
            try:
                match_kernel(kernels[0], library, first_weight)
                reasons[library] = None
            except NotApplicable as err:
                reasons[library] = str(err)
    return reasons


def generated_wins(task: KernelTask) -> bool:
    """Where our kernels beat oneDNN in every measurement: pooling, small convolutions (a library
    call with its reorders costs more than they do), stride-1 convolutions with at least 56 x 56
    outputs, and stride-1 depthwise convolutions."""
    if task.kind == "pool" or (task.kind == "conv" and 0 < task.flops < SMALL_CONV_FLOPS):
        return True
    if task.kind not in ("conv", "depthwise_conv") or len(task.output_shape) != 4 or task.num_weights < 1:
        return False
    source = task.arg_shapes[0]  # the unpadded input: the kernel pads it itself
    kernel_h = task.arg_shapes[len(task.arg_shapes) - task.num_weights][-2]
    out_h, out_w = task.output_shape[2], task.output_shape[3]
    # Stride 1 with any padding gives out >= in - k + 1; stride 2 about half of that.
    unit_stride = out_h >= source[2] - kernel_h + 1 and 2 * out_h > source[2]
    return unit_stride and (task.kind == "depthwise_conv" or out_h * out_w >= 56 * 56)


@dataclass
class CpuTarget(Target):
    """This machine's CPU: its vector width and cores (`CpuMachine.host`), compiled as `cpu` says."""

    cpu: CpuOptions = field(default_factory=CpuOptions)

    name = "cpu"
    libraries = LIBRARIES
    heuristic_text = HEURISTIC

    @property
    def threads(self) -> int:
        return thread_count(self.cpu.threads, self.cpu.parallel)

    @property
    def machine(self) -> CpuMachine:
        return CpuMachine.host(threads=self.threads)

    @property
    def device(self) -> str:
        return cpu_device(self.threads)

    def cut(self, lowered: LoweredModel) -> Cut:
        with lowered.imported.context:
            extracted = cpu_tasks(lowered.module, len(lowered.weights), self.machine, self.device)
        return Cut([CutKernel(e.kernel_name, e.task.kind, e.task, e.space) for e in extracted])

    def library_unavailable(self, library: str) -> str | None:
        return library_availability(library)

    def library_options(self, task: KernelTask, libraries: Sequence[str]) -> dict[str, Library | str]:
        usable = [library for library in libraries if library_availability(library) is None]
        reasons = applicability(task, usable)
        options: dict[str, Library | str] = {}
        for library in libraries:
            reason = reasons[library] if library in reasons else library_availability(library)
            options[library] = Library(library) if reason is None else reason
        return options

    def heuristic(self, task: KernelTask, candidates: Sequence[Candidate]) -> Candidate:
        by_impl = {c.impl: c for c in candidates if c.applicable}
        if GENERATED in by_impl and generated_wins(task):
            return by_impl[GENERATED]
        return next(by_impl[impl] for impl in HEURISTIC_ORDER if impl in by_impl)

    def runner(self) -> Runner:
        from woodpecker.measure.cpu_runner import CpuMeasureOptions, IsolatedCpuRunner

        cpu = self.cpu
        return IsolatedCpuRunner(
            CpuMeasureOptions(parallel=cpu.parallel, threads=cpu.threads, llvm_opt_level=cpu.llvm_opt_level)
        )

    def needs_cut(self, libraries: Sequence[str], read_records: bool) -> bool:
        return bool(libraries) or read_records

    def has_records(self, storage: str | None) -> bool:
        """Whether the tuning database holds any CPU workload (a missing file holds none)."""
        from woodpecker.database import database_exists, open_database

        if not database_exists(storage):
            return False
        with open_database(storage) as db:
            return bool(db.keys(target="cpu"))

    def report_header(self, mode: str, libraries: Sequence[str]) -> dict[str, Any]:
        return {**super().report_header(mode, libraries), "device": self.device}

    def codegen(self, lowered: LoweredModel, cut: Cut | None, plan: Plan, stats: CompileStats) -> CompiledModel:
        imported, weights = lowered.imported, lowered.weights
        with imported.context, ir.Location.unknown():
            executable = compile_cpu(lowered.module, self.cpu, len(weights), weights, plan.decisions, stats)
            with timed_stage(stats, "bind-weights"):
                executable.bind_weights(weights)
        stats.tuned_kernels = plan.tuned_kernels
        stats.library_kernels = len(executable.libraries)  # explicitly configured ones included
        stats.num_kernels = len(executable.kernel_names())
        stats.parallel = executable.parallel
        return CompiledModel(
            input_names=list(imported.input_names),
            output_names=list(imported.output_names),
            input_shapes={k: tuple(v) for k, v in imported.input_shapes.items()},
            output_shapes={k: tuple(v) for k, v in imported.output_shapes.items()},
            input_dtypes=dict(imported.input_dtypes),
            output_dtypes=dict(imported.output_dtypes),
            executable=executable,
            stats=stats,
            target=self.name,
            selection=plan.choices,
        )
