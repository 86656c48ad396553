"""The candidate implementations of one kernel: our generated code and the libraries that apply.

A candidate is a configuration the CPU runners measure like any tuning candidate: the
generated kernel's (its best tuning record, or `{}` for the default schedule) or
`{"impl": "onednn"}` / `{"impl": "blas"}`. A library that cannot compute the kernel (see
`woodpecker.libs.match`) or is not installed is still listed, with the reason, so the report
shows why it was not chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from woodpecker.kernels.task import KernelTask
from woodpecker.libs.match import LIBRARIES
from woodpecker.libs.replace import GENERATED, IMPL_KNOB
from woodpecker.runtime.cuda.libraries import LIBRARIES as CUDA_LIBRARIES

LIBRARY_OPTIONS = ("all", "none", *LIBRARIES)
DEFAULT = "default"  # the generated kernel with its default schedule, next to a tuned one


@dataclass
class Candidate:
    impl: str  # "generated" | "default" | "onednn" | "blas"
    config: dict[str, Any] = field(default_factory=dict)  # what the runner and compile_cpu take
    reason: str | None = None  # why it cannot be used (not applicable, not installed)

    @property
    def applicable(self) -> bool:
        return self.reason is None


def parse_libraries(spec: str | Sequence[str], target: str = "cpu") -> tuple[str, ...]:
    """"all" | "none" | a comma-separated list (or a sequence) of the target's libraries ->
    library names: "onednn", "blas" for the CPU; "cudnn", "cublas" for CUDA."""
    known = CUDA_LIBRARIES if target == "cuda" else LIBRARIES
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    if names == ["all"]:
        return known
    if names in (["none"], [""], []):
        return ()
    unknown = [n for n in names if n not in known]
    if unknown:
        options = ", ".join(("all", "none", *known))
        raise ValueError(f"unknown {target} library '{unknown[0]}'; libraries= takes one of {options}")
    return tuple(n for n in known if n in names)


def library_availability(library: str) -> str | None:
    """None when `library` loads here, else why not."""
    if library == "blas":
        from woodpecker.libs import blas

        return blas.availability()
    from woodpecker.libs import onednn

    return onednn.availability()


# Kernel kinds each library has calls for; other kinds are not applicable without looking closer.
_KINDS = {"onednn": ("conv", "depthwise_conv", "matmul", "pool"), "blas": ("matmul",)}


def applicability(task: KernelTask, libraries: Sequence[str]) -> dict[str, str | None]:
    """library -> None when it can compute the task's kernel, else why not (the task's module is
    parsed once, and only when some library has calls for the kernel's kind)."""
    reasons: dict[str, str | None] = {}
    for library in libraries:
        if task.kind not in _KINDS[library]:
            name = "oneDNN" if library == "onednn" else "BLAS"
            reasons[library] = f"{name} has no call for {task.kind} kernels"
    pending = [library for library in libraries if library not in reasons]
    if not pending:
        return reasons
    from mlir import ir

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


def kernel_candidates(
    task: KernelTask, libraries: Sequence[str], generated: dict[str, Any] | None = None
) -> list[Candidate]:
    """The generated candidate (configuration `generated`, default `{}`), the default schedule
    when `generated` is a tuning record, and one candidate per library."""
    candidates = [Candidate(GENERATED, dict(generated or {}))]
    if generated:  # a tuning record: the default schedule competes too (it is measured anyway)
        candidates.append(Candidate(DEFAULT, {}))
    usable = [library for library in libraries if library_availability(library) is None]
    reasons = applicability(task, usable)
    for library in libraries:
        reason = library_availability(library) if library not in reasons else reasons[library]
        candidates.append(Candidate(library, {IMPL_KNOB: library}, reason))
    return candidates
