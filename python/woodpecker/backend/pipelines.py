"""Textual upstream pass pipelines of the CPU backend, from linalg on tensors to LLVM."""

from __future__ import annotations

# Bufferization in two parts: between them the CPU backend moves @main's allocations into an
# arena argument (backend/arena.py), so the deallocation pipeline frees only what is left.
ALLOCATE = (
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map},"
    "buffer-results-to-out-params{modify-public-functions hoist-static-allocs}"
)
DEALLOCATE = "buffer-deallocation-pipeline"
BUFFERIZE = f"{ALLOCATE},{DEALLOCATE}"

# Loops: the scf.forall of the schedules (woodpecker.schedule) become OpenMP parallel loops
# (or serial loops); what stayed linalg becomes plain loops; vector ops go to LLVM's.
LOOPS_PARALLEL = (
    "func.func(scf-forall-to-parallel),func.func(convert-linalg-to-loops),convert-scf-to-openmp,"
    "convert-vector-to-scf{full-unroll=true},convert-vector-to-llvm"
)
LOOPS_SERIAL = (
    "func.func(scf-forall-to-for),func.func(convert-linalg-to-loops),"
    "convert-vector-to-scf{full-unroll=true},convert-vector-to-llvm"
)

TO_LLVM = (
    "expand-strided-metadata,lower-affine,finalize-memref-to-llvm,convert-scf-to-cf,"
    "{openmp}convert-math-to-llvm,convert-math-to-libm,convert-arith-to-llvm,convert-func-to-llvm,"
    "convert-cf-to-llvm,convert-ub-to-llvm,reconcile-unrealized-casts"
)


def cpu_pipeline(parallel: bool) -> str:
    """The whole bufferize-to-LLVM pipeline as `builtin.module(...)` text."""
    return f"builtin.module(canonicalize,{ALLOCATE},{cpu_lowering(parallel)[len('builtin.module(') :]}"


def cpu_bufferization() -> str:
    """The first part of `cpu_pipeline`: bufferization up to the allocations of @main."""
    return f"builtin.module(canonicalize,{ALLOCATE})"


def cpu_lowering(parallel: bool) -> str:
    """The rest of `cpu_pipeline`: deallocation, loops, LLVM."""
    loops = LOOPS_PARALLEL if parallel else LOOPS_SERIAL
    to_llvm = TO_LLVM.format(openmp="convert-openmp-to-llvm," if parallel else "")
    return f"builtin.module({DEALLOCATE},{loops},{to_llvm})"
