"""The CUDA plan's choices: per GPU kernel, our generated kernel, cuDNN or cuBLASLt.

`cuda_selection` is what `woodpecker.compile(target="cuda")` runs between lowering and code
generation: it cuts the GPU kernels out as tasks (`woodpecker.tune.cuda_tasks`), reads each
signature's best tuning record, and chooses between that generated kernel and the library
calls that can compute it (`woodpecker.select.cuda_match`) with the same machinery as the CPU
(`woodpecker.select.selection`): "measure" times every candidate on this machine's GPU
(`CudaRunner`: the tuning runners' method, output checked against the default kernel's) and
stores the timings in the kernel's study; "records" uses stored timings, else the heuristic
below; "heuristic" never measures. Kernels configured explicitly (by name or kind) keep their
configuration and the generated kernel.

Around a chosen cuDNN call: its epilogue is also compiled as a kernel of its own
(`library_epilogue`, for hosts where cuDNN cannot fuse it), and a zero pad that only feeds it is
folded into the call (`fuse_pads`: cuDNN pads itself; the pad step stays for the fallback).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlir import ir

from woodpecker.dialect import create_context
from woodpecker.errors import CompilationError
from woodpecker.gpu.inference_plan import KernelImpl
from woodpecker.gpu.prepare import PAD_TAG
from woodpecker.kernels.task import KernelTask, Runner
from woodpecker.libs.match import NotApplicable
from woodpecker.libs.replace import GENERATED, IMPL_KNOB
from woodpecker.runtime.cuda.plan import KernelLaunch, LibraryStep
from woodpecker.select.candidates import DEFAULT, Candidate
from woodpecker.select.cuda_match import CUDA_LIBRARIES, LibraryMatch, match_cuda_kernel
from woodpecker.select.selection import KernelChoice, SelectOptions, select_implementations
from woodpecker.tune.cuda_tasks import KernelCut

HEURISTIC_ORDER = ("cudnn", "cublas", GENERATED)
CUDA_HEURISTIC = (
    "cuDNN for every convolution whose epilogue it can fuse, cuBLASLt for every matmul whose epilogue it can fuse, "
    "the generated kernel for the rest (padding, pooling, reductions, elementwise); not measured: the vendor "
    "libraries' kernels are tuned for the device, our default configurations are not"
)


@functools.lru_cache(maxsize=1024)
def library_match(task: KernelTask, library: str) -> LibraryMatch | str:
    """The library call for `task`, or why there is none."""
    try:
        return match_cuda_kernel(task, library)
    except NotApplicable as err:
        return str(err)


def cuda_candidates(libraries: Sequence[str]) -> Callable[[KernelTask, dict[str, Any] | None], list[Candidate]]:
    """The candidates of a CUDA kernel task: generated (tuned or default), the default schedule
    next to a tuning record, and one per library (with the reason when it does not apply)."""

    def candidates(task: KernelTask, generated: dict[str, Any] | None) -> list[Candidate]:
        found = [Candidate(GENERATED, dict(generated or {}))]
        if generated:
            found.append(Candidate(DEFAULT, {}))
        for library in libraries:
            match = library_match(task, library)
            found.append(Candidate(library, {IMPL_KNOB: library}, match if isinstance(match, str) else None))
        return found

    return candidates


def cuda_heuristic(task: KernelTask, candidates: Sequence[Candidate]) -> Candidate:
    by_impl = {c.impl: c for c in candidates if c.applicable}
    return next(by_impl[impl] for impl in HEURISTIC_ORDER if impl in by_impl)


@dataclass
class CudaSelection:
    impls: dict[str, KernelImpl] = field(default_factory=dict)  # kernel function -> implementation
    # kernel function -> the generated kernel's config (a library step's fallback's too)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    choices: list[KernelChoice] = field(default_factory=list)
    tuned_kernels: int = 0
    header: dict[str, Any] = field(default_factory=dict)  # the report's: mode, libraries, GPU


def library_epilogue(
    task: KernelTask, step: LibraryStep, arch: str, name: str, arg_buffer: Callable[[int], str]
) -> KernelLaunch | None:
    """For a cuDNN step with a bias or post-ops: its epilogue as a kernel of its own (run after a
    plain convolution where cuDNN has no engine for the fused graph); else None. A kernel that
    does not compile only costs that option: the warning says so."""
    if step.library != "cudnn" or not (step.spec.get("bias") or step.spec.get("post_ops")):
        return None
    from woodpecker.gpu.split_epilogue import split_epilogue

    try:
        return split_epilogue(task, arch, name, arg_buffer, step.operands["y"])
    except CompilationError as err:
        warnings.warn(f"{err}: where cuDNN cannot fuse it, the step runs its generated kernel", stacklevel=2)
        return None


def _arg_buffers(cut: KernelCut) -> Callable[[int], str]:
    return lambda arg: str(cut.plan.inputs[cut.order[arg]].buffer)


def _operands(cut: KernelCut, match: LibraryMatch) -> dict[str, str]:
    operands = {role: str(cut.plan.inputs[cut.order[arg]].buffer) for role, arg in match.roles.items()}
    operands["y"] = str(cut.plan.output.buffer)
    return operands


def cuda_selection(
    cuts: Sequence[KernelCut],
    libraries: Sequence[str],
    mode: str,
    records: Mapping[str, dict[str, Any]],
    explicit: Mapping[str, Any],
    storage: str | None = None,
    runner_factory: Callable[[], Runner] | None = None,
    arch: str = "sm_90",
) -> CudaSelection:
    """Choices for the kernels `cuts` (one per kernel of the model, in launch order).

    records: task key -> best tuning record; explicit: the caller's configurations by kernel
    name or kind (those kernels are not selected)."""
    chosen = [c for c in cuts if c.plan.name not in explicit and c.plan.kind not in explicit]
    result = CudaSelection()
    if mode == "measure" and runner_factory is None:
        runner_factory = functools.partial(_cuda_runner, arch)
    options = SelectOptions(libraries=tuple(libraries), mode=mode, storage=storage)
    result.choices = select_implementations(
        [c.task for c in chosen],
        options,
        dict(records),
        runner_factory,
        candidates_for=cuda_candidates(libraries),
        heuristic=cuda_heuristic,
    )
    by_key = {choice.key: choice for choice in result.choices}
    for cut in chosen:
        choice = by_key[cut.task.key]
        if choice.choice in CUDA_LIBRARIES:
            match = library_match(cut.task, choice.choice)
            assert isinstance(match, LibraryMatch), match
            step = LibraryStep(choice.choice, dict(match.spec), _operands(cut, match))
            step.epilogue = library_epilogue(cut.task, step, arch, cut.plan.name, _arg_buffers(cut))
            result.impls[cut.plan.name] = KernelImpl(step, choice.how)
            if cut.task.key in records:  # the fallback kernel is the tuned one
                result.configs[cut.plan.name] = dict(records[cut.task.key])
        else:
            result.impls[cut.plan.name] = KernelImpl(None, choice.how)
            if choice.config:
                result.configs[cut.plan.name] = dict(choice.config)
                result.tuned_kernels += 1
    for cut in cuts:
        if cut.plan.name not in result.impls:
            result.impls[cut.plan.name] = KernelImpl(None, "configured")
    fuse_pads(cuts, result.impls)
    return result


_PAD_BODY = frozenset(
    {"linalg.index", "arith.constant", "arith.subi", "arith.cmpi", "arith.andi", "arith.maxsi", "arith.minsi",
     "tensor.extract", "arith.select", "linalg.yield"}
)


@functools.lru_cache(maxsize=1024)
def zero_pad_of(task: KernelTask) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(low, high) when the task's kernel is exactly a `tensor.pad` with zeros, else None."""
    if task.kind != "gather" or PAD_TAG not in task.module_text:
        return None
    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(task.module_text)
        main_fn = next(op for op in module.body.operations if op.operation.name == "func.func")
        ops = [op.operation for op in main_fn.regions[0].blocks[0].operations]
        linalg_ops = [op for op in ops if op.name.startswith("linalg.")]
        if len(linalg_ops) != 1 or PAD_TAG not in linalg_ops[0].attributes:
            return None
        op = linalg_ops[0]
        body = {nested.operation.name for nested in op.regions[0].blocks[0].operations}
        pad = ir.DictAttr(op.attributes[PAD_TAG])
        if not body <= _PAD_BODY or float(ir.FloatAttr(pad["value"]).value) != 0.0:
            return None
        return tuple(ir.DenseI64ArrayAttr(pad["low"])), tuple(ir.DenseI64ArrayAttr(pad["high"]))


def fuse_pads(cuts: Sequence[KernelCut], impls: dict[str, KernelImpl]) -> None:
    """cuDNN pads itself: a cuDNN convolution whose input is a zero pad of H and W that nothing
    else reads takes the unpadded tensor with those pads, and the pad step then runs only where
    that convolution falls back to its generated kernel (which reads the padded buffer)."""
    writers = {str(c.plan.output.buffer): c for c in cuts}
    readers: dict[str, set[str]] = {}
    for cut in cuts:
        for arg in cut.plan.inputs:
            readers.setdefault(str(arg.buffer), set()).add(cut.plan.name)
    for cut in cuts:
        library = impls[cut.plan.name].library
        if library is None or library.library != "cudnn":
            continue
        x = library.operands["x"]
        pad_cut = writers.get(x)
        if pad_cut is None or readers.get(x) != {cut.plan.name} or not x.startswith("intermediate"):
            continue
        pad = zero_pad_of(pad_cut.task)
        if pad is None or len(pad[0]) != 4 or any(pad[0][:2]) or any(pad[1][:2]) or len(pad_cut.plan.inputs) != 1:
            continue
        (source,) = pad_cut.plan.inputs
        library.spec = {
            **library.spec, "x_shape": list(source.shape), "pads_begin": list(pad[0][2:]), "pads_end": list(pad[1][2:])
        }
        library.operands = {**library.operands, "x": str(source.buffer)}
        before = impls[pad_cut.plan.name]
        impls[pad_cut.plan.name] = KernelImpl(before.library, before.how, only_for=cut.plan.name)


def _cuda_runner(arch: str) -> Runner:
    from woodpecker.measure.cuda_runner import CudaRunner
    from woodpecker.runtime.cuda.launch import cuda_status

    reason = cuda_status()
    if reason is not None:
        raise CompilationError(f"select='measure' needs an NVIDIA GPU to time the candidates: {reason}")
    return CudaRunner(arch)


def plan_selection_header(arch: str, mode: str, libraries: Sequence[str], gpu_reason: str | None) -> dict[str, Any]:
    """The report header of a CUDA plan: how it was chosen, and whether a GPU was there."""
    return {
        "target": "cuda",
        "arch": arch,
        "libraries": list(libraries),
        "mode": mode,
        "heuristic": CUDA_HEURISTIC,
        "gpu": "present" if gpu_reason is None else f"none: {gpu_reason}",
    }


__all__ = [
    "CUDA_HEURISTIC",
    "CudaSelection",
    "cuda_candidates",
    "cuda_heuristic",
    "cuda_selection",
    "fuse_pads",
    "library_match",
    "plan_selection_header",
    "zero_pad_of",
]
