"""The candidate implementations of one kernel: our generated code and the libraries that apply.

A candidate is what a runner measures like any tuning candidate: the generated kernel with its
best tuning record (or the default schedule), the default schedule next to a tuned one, and one
`Library` call per library of the target. A library that cannot compute the kernel, or is not
installed, is still listed with the reason, so the report shows why it was not chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from woodpecker.kernels.decision import DEFAULT, GENERATED, Generated, Library
from woodpecker.kernels.target import Candidate, Target
from woodpecker.kernels.task import KernelTask

LIBRARY_OPTIONS = ("all", "none")

__all__ = ["DEFAULT", "GENERATED", "Candidate", "kernel_candidates", "parse_libraries"]


def parse_libraries(spec: str | Sequence[str], target: str = "cpu") -> tuple[str, ...]:
    """"all" | "none" | a comma-separated list (or a sequence) of a target's libraries -> library
    names, in the target's order (the CPU's "onednn", "blas"; CUDA's "cudnn", "cublas")."""
    known = target_libraries(target)
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    if names == ["all"]:
        return tuple(known)
    if names in (["none"], [""], []):
        return ()
    unknown = [n for n in names if n not in known]
    if unknown:
        options = ", ".join((*LIBRARY_OPTIONS, *known))
        raise ValueError(f"unknown {target} library '{unknown[0]}'; libraries= takes one of {options}")
    return tuple(n for n in known if n in names)


def target_libraries(target: str) -> tuple[str, ...]:
    """The vendor libraries a target can call."""
    if target == "cuda":
        from woodpecker.runtime.cuda.libraries import LIBRARIES as CUDA_LIBRARIES

        return CUDA_LIBRARIES
    from woodpecker.libs.match import LIBRARIES

    return LIBRARIES


def kernel_candidates(
    target: Target, task: KernelTask, libraries: Sequence[str], generated: dict[str, Any] | None = None
) -> list[Candidate]:
    """The generated candidate (configuration `generated`, default `{}`), the default schedule
    when `generated` is a tuning record, and one candidate per library."""
    candidates = [Candidate(GENERATED, Generated(dict(generated or {})))]
    if generated:  # a tuning record: the default schedule competes too (it is measured anyway)
        candidates.append(Candidate(DEFAULT, Generated({})))
    options = target.library_options(task, libraries) if libraries else {}
    for library in libraries:
        option = options[library]
        if isinstance(option, Library):
            candidates.append(Candidate(library, option))
        else:
            candidates.append(Candidate(library, Library(library), option))
    return candidates
