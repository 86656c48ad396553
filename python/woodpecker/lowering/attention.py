"""Lowering of `wpk.matmul_transposed`: named linalg matmuls whose indexing maps read `rhs` as [N, K]."""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir
from mlir.dialects import linalg

from woodpecker.dialect import shape_of, wpk
from woodpecker.lowering.common import LoweringError, broadcast_shape, broadcast_to, collapse, expand, fill
from woodpecker.lowering.registry import lowers


def _maps(rank: int, *operands: Sequence[int]) -> list[ir.AffineMap]:
    """One projected-permutation map per operand, over `rank` loop dims."""
    return [ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(d) for d in dims]) for dims in operands]


def matmul_nt_2d(lhs: ir.Value, rhs: ir.Value) -> ir.Value:
    """[M, K] x [N, K]^T -> [M, N]: `linalg.matmul` with (m, k), (n, k) -> (m, n) maps."""
    (m, _), (n, _) = shape_of(lhs), shape_of(rhs)
    maps = _maps(3, (0, 2), (1, 2), (0, 1))
    return linalg.matmul(lhs, rhs, outs=[fill(0.0, [m, n])], indexing_maps=maps)


def batch_matmul_nt(lhs: ir.Value, rhs: ir.Value) -> ir.Value:
    """[B, M, K] x [B, N, K]^T -> [B, M, N]: `linalg.batch_matmul` with transposed-rhs maps."""
    (b, m, _), (_, n, _) = shape_of(lhs), shape_of(rhs)
    maps = _maps(4, (0, 1, 3), (0, 2, 3), (0, 1, 2))
    return linalg.batch_matmul(lhs, rhs, outs=[fill(0.0, [b, m, n])], indexing_maps=maps)


def _collapse_batch(value: ir.Value, rank: int) -> ir.Value:
    """[b0, ..., b(rank-1), X, Y] -> [b0 * ... * b(rank-1), X, Y]."""
    if rank == 1:
        return value
    return collapse(value, [list(range(rank)), [rank], [rank + 1]])


def matmul_transposed(lhs: ir.Value, rhs: ir.Value, out: list[int]) -> ir.Value:
    """lhs [*, M, K] x swap_last_two(rhs [*, N, K]), batch dims broadcast as numpy does."""
    a, b = shape_of(lhs), shape_of(rhs)
    if len(a) < 2 or len(b) < 2:
        raise LoweringError(f"matmul_transposed operands must have rank >= 2, got {a} and {b}")
    (m, k), (n, k2) = a[-2:], b[-2:]
    if k != k2:
        raise LoweringError(f"matmul_transposed contraction sizes differ: {a} x {b}")
    batch = list(broadcast_shape(a[:-2], b[:-2]))
    if [*batch, m, n] != out:
        raise LoweringError(f"matmul_transposed of {a} and {b} gives {[*batch, m, n]}, not the result shape {out}")
    rank = len(batch)
    if not batch:
        return matmul_nt_2d(lhs, rhs)
    if len(b) == 2:
        # A shared right operand: the batch folds into the rows of one matmul.
        rows = collapse(broadcast_to(lhs, [*batch, m, k]), [list(range(rank + 1)), [rank + 1]])
        return expand(matmul_nt_2d(rows, rhs), [list(range(rank + 1)), [rank + 1]], out)
    lhs = _collapse_batch(broadcast_to(lhs, [*batch, m, k]), rank)
    rhs = _collapse_batch(broadcast_to(rhs, [*batch, n, k]), rank)
    product = batch_matmul_nt(lhs, rhs)
    if rank == 1:
        return product
    return expand(product, [list(range(rank)), [rank], [rank + 1]], out)


@lowers(wpk.MatMulTransposedOp)
def lower_matmul_transposed(op: ir.Operation) -> ir.Value:
    return matmul_transposed(op.operands[0], op.operands[1], shape_of(op.results[0]))
