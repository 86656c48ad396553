"""Textual upstream pass pipelines of the CPU backend, from linalg on tensors to LLVM."""

from __future__ import annotations

BUFFERIZE = (
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map},"
    "buffer-results-to-out-params{modify-public-functions hoist-static-allocs},"
    "buffer-deallocation-pipeline"
)

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
    loops = LOOPS_PARALLEL if parallel else LOOPS_SERIAL
    to_llvm = TO_LLVM.format(openmp="convert-openmp-to-llvm," if parallel else "")
    return f"builtin.module(canonicalize,{BUFFERIZE},{loops},{to_llvm})"
