"""Replaces the f32 math.exp / expm1 / log / log1p / tanh ops of CPU code by arith approximations.

On the CPU, convert-math-to-llvm turns these into LLVM intrinsics that LLVM scalarizes into one
libm call per vector lane (there is no vector math library in the pipeline, and MLIR's Python
bindings have no math polynomial-approximation pass). `expand_math` rewrites each such op, on a
scalar or a vector of f32, into the builders of lowering/vector_math.py, in place, after the
schedules have vectorized the kernels; other element types keep the math op.
"""

from __future__ import annotations

from mlir import ir

from woodpecker.lowering.vector_math import MATH_EXPANSIONS, is_f32_like


def expand_math(module: ir.Module) -> int:
    """Rewrites the module's f32 math ops of MATH_EXPANSIONS; returns how many it replaced."""
    found: list[ir.Operation] = []

    def collect(op: ir.Operation) -> ir.WalkResult:
        if op.name in MATH_EXPANSIONS and len(op.results) == 1 and is_f32_like(op.results[0].type):
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    for op in found:
        with ir.InsertionPoint(op), op.location:
            replacement = MATH_EXPANSIONS[op.name](op.operands[0])
        op.results[0].replace_all_uses_with(replacement)
        op.erase()
    return len(found)
