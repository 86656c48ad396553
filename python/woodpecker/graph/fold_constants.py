"""`wpk-fold-constants`: evaluate ops whose operands are all weights or constants.

Every `wpk` op (other than `wpk.weight`/`wpk.constant`) whose operands are all
produced by `wpk.weight` or `wpk.constant` is computed with numpy
(graph/evaluate.py, float64) and replaced by a new weight holding the f32
result (a `wpk.constant` when it has one element). Typical cases: transposes,
reshapes, pads and arithmetic on weights, and shape-only chains the importer
did not fold. The new arrays go into the GraphContext's weight table. A fold whose result
would exceed the GraphContext's fold budget (fold_budget.py, from the result type, before
evaluating) is not done: the op computes it at run time.

A `wpk.gemm` / `wpk.fused_gemm` with `trans_b` and a constant `b` gets `b` transposed once
here (`trans_b` becomes false): the code then reads the weights in the order it multiplies
them instead of transposing them on every run, and a library call can take them as they are.
"""

from __future__ import annotations

import numpy as np
from mlir import ir
from mlir.rewrite import PatternRewriter

from woodpecker.dialect import attr_bool, bool_attr, op_names
from woodpecker.graph.context import DATA_OPS, GraphContext
from woodpecker.graph.evaluate import NotFoldable, evaluate
from woodpecker.graph.rewrite import (
    NO_MATCH,
    MatchAndRewrite,
    Pattern,
    apply_patterns,
    erase_dead_ops,
    location_name,
    shape,
)

PASS_NAME = "wpk-fold-constants"


def fold_pattern(graph: GraphContext) -> MatchAndRewrite:
    def fold(op: ir.Operation, rewriter: PatternRewriter) -> bool | None:
        if not op.operands or len(op.results) != 1:
            return NO_MATCH
        arrays = [graph.array_of(value) for value in op.operands]
        # The result's size is known from its type; one over the budget is left to run time.
        if any(array is None for array in arrays) or not graph.fold_budget.admits(shape(op.results[0])):
            return NO_MATCH
        try:
            result = evaluate(op, arrays)
        except NotFoldable:
            return NO_MATCH
        with rewriter.ip:
            value = graph.constant(result, f"{location_name(op)}_folded", op.location)
        rewriter.replace_op(op, [value])
        return None

    return fold


def transpose_b_pattern(graph: GraphContext) -> MatchAndRewrite:
    def transpose_b(op: ir.Operation, rewriter: PatternRewriter) -> bool | None:
        if not attr_bool(op, "trans_b"):
            return NO_MATCH
        b = graph.array_of(op.operands[1])
        if b is None or b.ndim != 2:
            return NO_MATCH
        with rewriter.ip:
            transposed = graph.constant(np.ascontiguousarray(b.T), f"{location_name(op)}_b_transposed", op.location)
            attrs = {name: attr for name, attr in op.attributes.items()}
            attrs["trans_b"] = bool_attr(False)
            operands = list(op.operands)
            operands[1] = transposed
            new = ir.Operation.create(
                op.name, results=[r.type for r in op.results], operands=operands, attributes=attrs, loc=op.location
            )
        rewriter.replace_op(op, new.results)
        return None

    return transpose_b


def patterns(graph: GraphContext) -> list[Pattern]:
    fold = fold_pattern(graph)
    transpose_b = transpose_b_pattern(graph)
    folds = [Pattern(name, fold) for name in op_names() if name not in DATA_OPS]
    return folds + [Pattern(name, transpose_b) for name in ("wpk.gemm", "wpk.fused_gemm")]


def fold_constants(root: ir.Operation, graph: GraphContext) -> None:
    """The pass: folds to a fixpoint, then erases the weights nothing uses any more."""
    apply_patterns(root, patterns(graph))
    erase_dead_ops(root)
