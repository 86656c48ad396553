"""`wpk-fold-constants`: evaluate ops whose operands are all weights or constants.

Every `wpk` op (other than `wpk.weight`/`wpk.constant`) whose operands are all
produced by `wpk.weight` or `wpk.constant` is computed with numpy
(graph/evaluate.py, float64) and replaced by a new weight holding the f32
result (a `wpk.constant` when it has one element). Typical cases: transposes,
reshapes, pads and arithmetic on weights, and shape-only chains the importer
did not fold. The new arrays go into the GraphContext's weight table.
"""

from __future__ import annotations

from mlir import ir
from mlir.rewrite import PatternRewriter

from woodpecker.dialect import op_names
from woodpecker.graph.context import DATA_OPS, GraphContext
from woodpecker.graph.evaluate import NotFoldable, evaluate
from woodpecker.graph.rewrite import NO_MATCH, MatchAndRewrite, Pattern, apply_patterns, erase_dead_ops, location_name

PASS_NAME = "wpk-fold-constants"


def fold_pattern(graph: GraphContext) -> MatchAndRewrite:
    def fold(op: ir.Operation, rewriter: PatternRewriter) -> bool | None:
        if not op.operands or len(op.results) != 1:
            return NO_MATCH
        arrays = [graph.array_of(value) for value in op.operands]
        if any(array is None for array in arrays):
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


def patterns(graph: GraphContext) -> list[Pattern]:
    fold = fold_pattern(graph)
    return [Pattern(name, fold) for name in op_names() if name not in DATA_OPS]


def fold_constants(root: ir.Operation, graph: GraphContext) -> None:
    """The pass: folds to a fixpoint, then erases the weights nothing uses any more."""
    apply_patterns(root, patterns(graph))
    erase_dead_ops(root)
