"""Lowering of the attention ops.

`wpk.matmul_transposed`: named linalg matmuls whose indexing maps read `rhs` as [N, K].

`wpk.attention(q, k, v, mask) {scale}` on [B, H, S, D] heads viewed as [B*H, S, D]: the scores
`q k^T` (a batch matmul reading k transposed) with `scale * s + mask` as its epilogue, the row
max, `exp(s - max)` and its row sum, then the product of the unnormalized `exp` with v whose
epilogue divides by the row sum (the normalization on [S, E] instead of [S, T]). Each is a unit
the CPU schedules tile, split across cores and vectorize (the matmuls along the key axis and
E, the row passes along the key axis); all of them are one model kernel (one `wpk` op).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlir import ir
from mlir.dialects import arith, linalg
from mlir.dialects import math as mmath

from woodpecker.dialect import attr_float, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    broadcast_map,
    broadcast_shape,
    broadcast_to,
    collapse,
    empty,
    expand,
    fill,
    generic,
    identity_map,
    projection_map,
    reshape,
    scalar,
)
from woodpecker.lowering.matmul import matmul
from woodpecker.lowering.reduction import accumulate, reduce_lanes
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


def _heads(value: ir.Value) -> ir.Value:
    """[B, H, X, Y] -> [B * H, X, Y]."""
    return collapse(value, [[0, 1], [2], [3]])


def _mask_view(mask: ir.Value, b: int, h: int, scores: list[int]) -> tuple[ir.Value, ir.AffineMap]:
    """The mask as an operand of a generic over the [B * H, S, T] scores, with its indexing map:
    a mask without [B, H] dims (or of ones there) is read through a broadcast map, one with both
    is collapsed like the heads; a mask with only one of them is broadcast to [B, H, ...] first."""
    m = shape_of(mask)
    if len(m) > 4:
        raise LoweringError(f"attention mask of rank {len(m)} does not broadcast to rank 4 scores")
    m4 = [1] * (4 - len(m)) + list(m)
    if m4[:2] == [1, 1]:
        plane = reshape(mask, m4[2:]) if len(m) != 2 else mask
        return plane, broadcast_map(m4[2:], scores)
    full = mask if m4[:2] == [b, h] else broadcast_to(reshape(mask, m4) if len(m) != 4 else mask, [b, h, *m4[2:]])
    return _heads(full), broadcast_map([b * h, *m4[2:]], scores)


def _arith_max(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.MaximumFOp(a, b).result


def attention(q: ir.Value, k: ir.Value, v: ir.Value, mask: ir.Value | None, scale: float) -> ir.Value:
    """softmax(scale * q k^T + mask) v on [B, H, S, D] q, [B, H, T, D] k, [B, H, T, E] v."""
    (b, h, s, _), (_, _, t, _), (_, _, _, e) = shape_of(q), shape_of(k), shape_of(v)
    scores_shape = [b * h, s, t]
    ident = identity_map(3)
    rows = projection_map(3, [0, 1])
    raw = batch_matmul_nt(_heads(q), _heads(k))
    inputs, maps = [raw], [ident]
    if mask is not None:
        view, view_map = _mask_view(mask, b, h, scores_shape)
        inputs.append(view)
        maps.append(view_map)

    def scaled(a: Sequence[ir.Value]) -> ir.Value:
        x = arith.MulFOp(a[0], scalar(scale)).result if scale != 1.0 else a[0]
        return arith.AddFOp(x, a[1]).result if len(a) > 2 else x

    scores = generic(inputs, [*maps, ident], empty(scores_shape), scaled) if len(inputs) > 1 or scale != 1.0 else raw
    peak = reduce_lanes(scores, [2], -math.inf, _arith_max, _arith_max)
    exps = generic(
        [scores, peak],
        [ident, rows, ident],
        empty(scores_shape),
        lambda a: mmath.ExpOp(arith.SubFOp(a[0], a[1]).result).result,
    )
    total = accumulate(exps, [2])
    context = matmul(exps, _heads(v), [b * h, s, e])
    out = generic(
        [context, total], [ident, rows, ident], empty([b * h, s, e]), lambda a: arith.DivFOp(a[0], a[1]).result
    )
    return expand(out, [[0, 1], [2], [3]], [b, h, s, e])


@lowers(wpk.AttentionOp)
def lower_attention(op: ir.Operation) -> ir.Value:
    q, k, v = op.operands[0], op.operands[1], op.operands[2]
    mask = op.operands[3] if len(op.operands) > 3 else None
    return attention(q, k, v, mask, attr_float(op, "scale"))
