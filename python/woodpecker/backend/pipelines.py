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
# The parallel regions get their thread count from the compile (`{threads}`: the team size, fixed,
# so a model compiled for 2 threads runs on 2 on a larger machine and whatever omp_set_num_threads
# another model set); "" leaves it to the OpenMP runtime (every core).
LOOPS_PARALLEL = (
    "func.func(scf-forall-to-parallel),func.func(convert-linalg-to-loops),convert-scf-to-openmp{threads},"
    "convert-vector-to-scf{{full-unroll=true}},convert-vector-to-llvm"
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


def cpu_pipeline(parallel: bool, threads: int = 0) -> str:
    """The whole bufferize-to-LLVM pipeline as `builtin.module(...)` text."""
    return f"builtin.module(canonicalize,{ALLOCATE},{cpu_lowering(parallel, threads)[len('builtin.module(') :]}"


def cpu_bufferization() -> str:
    """The first part of `cpu_pipeline`: bufferization up to the allocations of @main."""
    return f"builtin.module(canonicalize,{ALLOCATE})"


def cpu_lowering(parallel: bool, threads: int = 0) -> str:
    """The rest of `cpu_pipeline`: deallocation, loops, LLVM; `threads` > 0: the parallel regions'
    team size (0: the OpenMP runtime's default)."""
    team = f"{{num-threads={threads}}}" if threads > 0 else ""
    loops = LOOPS_PARALLEL.format(threads=team) if parallel else LOOPS_SERIAL
    to_llvm = TO_LLVM.format(openmp="convert-openmp-to-llvm," if parallel else "")
    return f"builtin.module({DEALLOCATE},{loops},{to_llvm})"
