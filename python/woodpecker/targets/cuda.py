"""The CUDA target: model kernels cut by the GPU partition, cuDNN/cuBLASLt candidates, PTX + a plan.

* cut: `gpu.tasks.cuda_kernel_cuts` (a model kernel is one or more launches: a convolution's
  padding gather and the convolution, a softmax's reductions);
* library candidates: cuDNN for convolutions (bias, residual add and activation fused into one
  cuDNN graph; a zero pad in front folded into the call's pads), cuBLASLt for matmuls with bias
  and relu epilogues (`gpu.library_match`);
* heuristic: `CUDA_HEURISTIC` below (nothing can be measured without a GPU);
* runner: `CudaRunner` on this machine's GPU (`wpk tune --export` measures elsewhere);
* code generation: `gpu.codegen.compile_gpu` with the decisions' configurations, and the
  inference plan (`gpu.inference_plan`): per model kernel its launches, or its library call with
  the launches as fallback and, for a cuDNN call with an epilogue, that epilogue as a kernel of
  its own (`gpu.split_epilogue`) for hosts where cuDNN cannot fuse it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from woodpecker.errors import CompilationError
from woodpecker.frontend import LoweredModel
from woodpecker.gpu.inference_plan import KernelImpl
from woodpecker.gpu.library_match import LibraryMatch, library_match
from woodpecker.gpu.model import CudaModel, build_cuda_model, compile_program
from woodpecker.gpu.space import gpu_search_space
from woodpecker.gpu.split_epilogue import library_epilogue
from woodpecker.gpu.tasks import KernelCut, cuda_kernel_cuts
from woodpecker.kernels.decision import GENERATED, Library
from woodpecker.kernels.target import Candidate, Cut, CutKernel, Plan, Target
from woodpecker.kernels.task import KernelTask, Runner
from woodpecker.runtime.cuda.libraries import LIBRARIES as CUDA_LIBRARIES
from woodpecker.runtime.cuda.plan import LibraryStep
from woodpecker.stats import CompileStats

HEURISTIC_ORDER = ("cudnn", "cublas", GENERATED)
CUDA_HEURISTIC = (
    "cuDNN for every convolution whose epilogue it can fuse, cuBLASLt for every matmul whose epilogue it can fuse, "
    "the generated kernel for the rest (padding, pooling, reductions, elementwise); not measured: the vendor "
    "libraries' kernels are tuned for the device, our default configurations are not"
)


def library_step(cut: KernelCut, match: LibraryMatch, arch: str) -> LibraryStep:
    """The plan step calling `match` on kernel `cut`'s buffers (with its split epilogue)."""

    def arg_buffer(arg: int) -> str:
        return str(cut.arg_buffers[arg])

    operands = {role: arg_buffer(arg) for role, arg in match.roles.items()}
    operands["y"] = str(cut.output)
    step = LibraryStep(match.library, dict(match.spec), operands)
    step.epilogue = library_epilogue(cut.task, step, arch, cut.name, arg_buffer)
    return step


def cuda_status() -> str | None:
    from woodpecker.runtime.cuda.launch import cuda_status as status

    return status()


@dataclass
class CudaTarget(Target):
    """An NVIDIA GPU architecture (`sm_80`, `sm_90`); `configs` are the caller's per-kernel
    schedules (kernel name or kind -> GpuConfig or knobs)."""

    arch: str = "sm_90"
    configs: Mapping[str, Any] = field(default_factory=dict)

    name = "cuda"
    libraries = CUDA_LIBRARIES
    heuristic_text = CUDA_HEURISTIC

    @property
    def device(self) -> str:
        from woodpecker.gpu.arch import get_arch

        return get_arch(self.arch).chip

    def cut(self, lowered: LoweredModel) -> Cut:
        _require_nchw(lowered)
        _require_float32(lowered)
        with lowered.imported.context:
            cuts = cuda_kernel_cuts(lowered.module, self.arch, num_inputs=lowered.num_inputs)
        # A kernel's space is its main launch's (what the standalone task's re-partition gives too).
        kernels = [
            CutKernel(c.name, c.task.kind, c.task, gpu_search_space(c.main.problem, self.arch, c.task.kernel_name))
            for c in cuts
        ]
        return Cut(kernels, state={c.name: c for c in cuts})

    def library_options(self, task: KernelTask, libraries: Sequence[str]) -> dict[str, Library | str]:
        options: dict[str, Library | str] = {}
        for library in libraries:
            match = library_match(task, library)
            options[library] = match if isinstance(match, str) else Library(library, dict(match.spec))
        return options

    def heuristic(self, task: KernelTask, candidates: Sequence[Candidate]) -> Candidate:
        by_impl = {c.impl: c for c in candidates if c.applicable}
        return next(by_impl[impl] for impl in HEURISTIC_ORDER if impl in by_impl)

    def measure_unavailable(self) -> str | None:
        reason = cuda_status()
        if reason is None:
            return None
        return (
            f"select='measure' times the candidates on an NVIDIA GPU, and there is none here ({reason}); "
            "use select='heuristic' (or 'records' with timings recorded on a GPU host)"
        )

    def runner(self) -> Runner:
        from woodpecker.measure.cuda_runner import CudaRunner

        reason = cuda_status()
        if reason is not None:
            raise CompilationError(f"select='measure' needs an NVIDIA GPU to time the candidates: {reason}")
        return CudaRunner(self.arch)

    def has_records(self, storage: str | None) -> bool:
        """Whether the tuning database holds any CUDA workload (a missing file holds none)."""
        from woodpecker.database import database_exists, open_database

        if not database_exists(storage):
            return False
        with open_database(storage) as db:
            return bool(db.keys(target="cuda"))

    def report_header(self, mode: str, libraries: Sequence[str]) -> dict[str, Any]:
        reason = cuda_status()
        return {
            **super().report_header(mode, libraries),
            "arch": self.arch,
            "gpu": "present" if reason is None else f"none: {reason}",
        }

    def codegen(self, lowered: LoweredModel, cut: Cut | None, plan: Plan, stats: CompileStats) -> CudaModel:
        _require_float32(lowered)
        cuts: dict[str, KernelCut] = dict(cut.state) if cut is not None else {}
        configs: dict[str, Any] = {}
        for name, decision in plan.decisions.items():
            if isinstance(decision, Library):
                if cuts[name].task.key in plan.records:  # the library step's fallback is the tuned kernel
                    configs[name] = dict(plan.records[cuts[name].task.key])
            elif decision.config:
                configs[name] = dict(decision.config)
        configs.update(self.configs)
        stats.tuned_kernels = plan.tuned_kernels
        with lowered.imported.context:
            # The launches first: every configuration is checked before anything else compiles.
            program = compile_program(
                lowered.module, lowered.weights, lowered.imported, self.arch, configs or None, stats
            )
            impls = self._implementations(cuts, plan)
            return build_cuda_model(
                program, lowered.module, lowered.weights, lowered.imported, stats, impls, plan.choices, plan.report
            )

    def _implementations(self, cuts: Mapping[str, KernelCut], plan: Plan) -> dict[str, KernelImpl]:
        """Per model kernel: its library step (with its split epilogue) or its generated launches."""
        how = {name: choice.how for choice in plan.choices for name in choice.kernel_names}
        impls: dict[str, KernelImpl] = {}
        for name, kernel in cuts.items():
            decision = plan.decisions.get(name)
            if decision is None:
                impls[name] = KernelImpl(None, "configured")
            elif isinstance(decision, Library):
                match = library_match(kernel.task, decision.name)
                if isinstance(match, str):  # the choice was made elsewhere and no longer applies
                    warnings.warn(f"kernel {name} cannot use {decision.name}: {match}; using the generated kernel",
                                  stacklevel=3)
                    impls[name] = KernelImpl(None, how.get(name, "configured"))
                else:
                    impls[name] = KernelImpl(library_step(kernel, match, self.arch), how.get(name, "configured"))
            else:
                impls[name] = KernelImpl(None, how.get(name, "only candidate"))
        return impls


def _require_nchw(lowered: LoweredModel) -> None:
    """The CUDA kernels are NCHW: a model lowered in the blocked channel layout is one CompilationError."""
    if lowered.blocked:
        raise CompilationError(
            "the model was lowered in the blocked channel layout (NCHW[x]c), which the CUDA target does not "
            "compute: lower it with layout='nchw'"
        )


def _require_float32(lowered: LoweredModel) -> None:
    """The CUDA target compiles float32 inputs and outputs only (int64, int32 and bool tensors
    are compiled for the CPU): one CompilationError naming the first other one."""
    imported = lowered.imported
    for kind, dtypes in (("input", imported.input_dtypes), ("output", imported.output_dtypes)):
        for name, dtype in dtypes.items():
            if dtype != "float32":
                raise CompilationError(
                    f"{kind} '{name}' is {dtype}; the CUDA target compiles float32 inputs and outputs only "
                    "(int64, int32 and bool tensors: target='cpu')"
                )
