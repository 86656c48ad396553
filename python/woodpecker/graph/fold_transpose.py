"""`wpk-fold-transpose`: a transpose ending in the swap of the last two dims folds into its matmul.

`wpk.matmul(a, wpk.transpose(x, perm))` where `perm` moves the innermost dimension of `x` to
the rows of the right operand (`perm[-2]` is the last dim: K^T in attention, `perm = [0, 1, 3,
2]`, or `[0, 2, 3, 1]` on the [B, S, H, D] keys) becomes `wpk.matmul_transposed(a, y)` with
`y = transpose(x, q)`, `q` being `perm` with its last two entries exchanged: the product reads
`y` as [..., N, K] through its indexing maps instead of materializing the swap. `q` keeps the
innermost dimension in place (a copy of contiguous rows), and when it is the identity `y` is
`x` and no transpose is left. Any other transpose stays (folding it would only trade it for a
worse one). Only a transpose used by that matmul alone folds (else it stays anyway),
and both operands must have rank >= 2 (a 1-D operand has no swap to read).
"""

from __future__ import annotations

from mlir import ir
from mlir.rewrite import PatternRewriter

from woodpecker.dialect import create_op
from woodpecker.graph.rewrite import (
    NO_MATCH,
    Pattern,
    apply_patterns,
    erase_dead_ops,
    fused_location,
    producer_named,
    shape,
    used_only_by,
)

PASS_NAME = "wpk-fold-transpose"


def unswapped_perm(perm: list[int]) -> list[int]:
    """`perm` with its last two entries exchanged: transpose(x, perm) = swap_last_two(transpose(x, q))."""
    return [*perm[:-2], perm[-1], perm[-2]]


def fold_rhs_transpose(matmul: ir.Operation, rewriter: PatternRewriter) -> bool | None:
    lhs, rhs = matmul.operands[0], matmul.operands[1]
    transpose = producer_named(rhs, "wpk.transpose")
    if transpose is None or len(shape(lhs)) < 2 or len(shape(rhs)) < 2 or not used_only_by(rhs, matmul):
        return NO_MATCH
    perm = list(ir.DenseI64ArrayAttr(transpose.attributes["perm"]))
    if perm[-2] != len(perm) - 1:
        return NO_MATCH
    q = unswapped_perm(perm)
    source = transpose.operands[0]
    with rewriter.ip:
        if q != list(range(len(q))):
            in_shape = shape(source)
            y_type = ir.RankedTensorType.get([in_shape[p] for p in q], ir.F32Type.get())
            attrs = {"perm": ir.DenseI64ArrayAttr.get(q)}
            source = create_op("transpose", [source], [y_type], attrs, transpose.location).results[0]
        new = create_op(
            "matmul_transposed", [lhs, source], [matmul.results[0].type], {}, fused_location(transpose, matmul)
        )
    rewriter.replace_op(matmul, new)
    rewriter.erase_op(transpose)
    return None


def patterns() -> list[Pattern]:
    return [Pattern("wpk.matmul", fold_rhs_transpose)]


def fold_transpose(root: ir.Operation) -> None:
    """The pass: folds every such transpose, then erases what became dead."""
    apply_patterns(root, patterns())
    erase_dead_ops(root)
