"""Lowering of the normalizations: layer_norm, instance_norm, group_norm and lrn.

A normalization over `axes` is two reductions and two elementwise passes (`standardize`):
sum(x) -> mean, sum((x - mean)^2) -> rstd = 1 / sqrt(var + epsilon), then one all-parallel
generic y = (x - mean) * rstd * scale + bias whose innermost loop runs along the normalized
(hidden) axis with unit stride, so that a schedule vectorizes it there. The sums are staged
when long (lowering/reduction.py `accumulate`).
"""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir
from mlir.dialects import arith
from mlir.dialects import math as mmath

from woodpecker.dialect import attr_float, attr_int, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    broadcast_map,
    empty,
    fill,
    generic,
    identity_map,
    pad,
    projection_map,
    reshape,
    scalar,
)
from woodpecker.lowering.reduction import LANES, REDUCE_LOWERINGS, STAGE_THRESHOLD, accumulate, lane_view
from woodpecker.lowering.registry import lowers
from woodpecker.ops.normalization import lrn_window

Operand = tuple[ir.Value, ir.AffineMap]
"""A side operand of the final pass and its indexing map in the input's iteration space."""


def _count(shape: Sequence[int], axes: Sequence[int]) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _sum_squared_deviation(x: ir.Value, mean: ir.Value, axes: Sequence[int], kept: ir.AffineMap) -> ir.Value:
    """sum((x - mean)^2) over `axes`: one reduction reading x and mean, or, past
    STAGE_THRESHOLD elements, a staged sum over the materialized deviations."""
    shape = shape_of(x)
    rank = len(shape)
    ident = identity_map(rank)

    def deviation(a: Sequence[ir.Value]) -> ir.Value:
        return arith.SubFOp(a[0], a[1]).result

    if _count(shape, axes) > STAGE_THRESHOLD:
        centered = generic([x, mean], [ident, kept, ident], empty(shape), deviation)
        return accumulate(centered, axes, REDUCE_LOWERINGS["sum_square"].pre)
    kept_dims = [d for d in range(rank) if d not in set(axes)]
    kept_shape = [shape[d] for d in kept_dims]

    def body(a: Sequence[ir.Value]) -> ir.Value:
        d = deviation(a)
        return arith.AddFOp(arith.MulFOp(d, d).result, a[2]).result

    view = lane_view(x, axes)
    if view is None:
        iterators = ["reduction" if d in set(axes) else "parallel" for d in range(rank)]
        return generic([x, mean], [ident, kept, kept], fill(0.0, kept_shape), body, iterators)
    # [kept..., steps, LANES]: LANES partial sums per output along the hidden axis, then those.
    k = len(kept_shape)
    loops = k + 2
    lanes = [*range(k), k + 1]
    partial = generic(
        [view, mean],
        [identity_map(loops), projection_map(loops, list(range(k))), projection_map(loops, lanes)],
        fill(0.0, [*kept_shape, LANES]),
        body,
        ["parallel"] * k + ["reduction", "parallel"],
    )
    return accumulate(partial, [k])


def _stats(x: ir.Value, axes: Sequence[int], epsilon: float) -> tuple[ir.Value, ir.Value, ir.AffineMap]:
    """(mean, rstd, kept map): the mean and 1 / sqrt(biased variance + epsilon) over `axes`."""
    shape = shape_of(x)
    rank = len(shape)
    kept_dims = [d for d in range(rank) if d not in set(axes)]
    kept = projection_map(rank, kept_dims)
    kept_shape = [shape[d] for d in kept_dims]
    flat = identity_map(len(kept_shape))
    inv_n = 1.0 / _count(shape, axes)

    mean = generic(
        [accumulate(x, axes)], [flat, flat], empty(kept_shape), lambda a: arith.MulFOp(a[0], scalar(inv_n)).result
    )
    total = _sum_squared_deviation(x, mean, axes, kept)

    def rstd_of(a: Sequence[ir.Value]) -> ir.Value:
        var = arith.MulFOp(a[0], scalar(inv_n)).result
        return mmath.RsqrtOp(arith.AddFOp(var, scalar(epsilon)).result).result

    return mean, generic([total], [flat, flat], empty(kept_shape), rstd_of), kept


def standardize(x: ir.Value, axes: Sequence[int], epsilon: float, affine: Sequence[Operand]) -> ir.Value:
    """(x - mean) * rstd over `axes`, times `affine[0]` and plus `affine[1]` when given."""
    shape = shape_of(x)
    rank = len(shape)
    mean, rstd, kept = _stats(x, axes, epsilon)
    values = [v for v, _ in affine]
    maps = [m for _, m in affine]

    def body(a: Sequence[ir.Value]) -> ir.Value:
        y = arith.MulFOp(arith.SubFOp(a[0], a[1]).result, a[2]).result
        if len(affine) > 0:
            y = arith.MulFOp(y, a[3]).result
        if len(affine) > 1:
            y = arith.AddFOp(y, a[4]).result
        return y

    return generic(
        [x, mean, rstd, *values], [identity_map(rank), kept, kept, *maps, identity_map(rank)], empty(shape), body
    )


@lowers(wpk.LayerNormOp)
def lower_layer_norm(op: ir.Operation) -> ir.Value:
    x, scale = op.operands[0], op.operands[1]
    bias = op.operands[2] if len(op.operands) > 2 else None
    shape = shape_of(x)
    axis = attr_int(op, "axis")
    if not 0 <= axis < len(shape):
        raise LoweringError(f"layer_norm axis {axis} is out of range for shape {shape}")
    affine = [(v, broadcast_map(shape_of(v), shape)) for v in (scale, bias) if v is not None]
    return standardize(x, list(range(axis, len(shape))), attr_float(op, "epsilon"), affine)


def _channel_map(rank: int) -> ir.AffineMap:
    return projection_map(rank, [1])


@lowers(wpk.InstanceNormOp)
def lower_instance_norm(op: ir.Operation) -> ir.Value:
    x, scale, bias = op.operands
    rank = len(shape_of(x))
    affine = [(scale, _channel_map(rank)), (bias, _channel_map(rank))]
    return standardize(x, list(range(2, rank)), attr_float(op, "epsilon"), affine)


@lowers(wpk.GroupNormOp)
def lower_group_norm(op: ir.Operation) -> ir.Value:
    """On x viewed as [N, G, C / G, spatial]: standardized over dims 2, 3; the per-channel scale
    and bias viewed as [G, C / G]."""
    x, scale, bias = op.operands
    shape = shape_of(x)
    groups = attr_int(op, "num_groups")
    n, c = shape[0], shape[1]
    if groups < 1 or c % groups:
        raise LoweringError(f"group_norm: {groups} groups do not divide {c} channels")
    spatial = _count(shape, range(2, len(shape)))
    view = [n, groups, c // groups, spatial]
    per_group = projection_map(4, [1, 2])
    affine = [(reshape(scale, [groups, c // groups]), per_group), (reshape(bias, [groups, c // groups]), per_group)]
    out = standardize(reshape(x, view), [2, 3], attr_float(op, "epsilon"), affine)
    return reshape(out, shape)


@lowers(wpk.LrnOp)
def lower_lrn(op: ir.Operation) -> ir.Value:
    """x / (bias + alpha / size * window sum of x^2 across channels) ^ beta; the window sum is
    a reduction over the window on x^2 zero-padded along the channels."""
    x = op.operands[0]
    shape = shape_of(x)
    rank = len(shape)
    size = attr_int(op, "size")
    alpha, beta, bias = (attr_float(op, n) for n in ("alpha", "beta", "bias"))
    before, after = lrn_window(size)
    ident = identity_map(rank)
    squares = generic([x], [ident, ident], empty(shape), lambda a: arith.MulFOp(a[0], a[0]).result)
    padded = pad(squares, [0, before] + [0] * (rank - 2), [0, after] + [0] * (rank - 2), 0.0)
    # Loops: the output dims, then the window tap k; the padded input reads channel c + k.
    loops = rank + 1
    dims = [ir.AffineDimExpr.get(d) for d in range(loops)]
    window = ir.AffineMap.get(loops, 0, [dims[0], dims[1] + dims[rank], *dims[2:rank]])
    taps = ir.AffineMap.get(loops, 0, [dims[rank]])
    out_map = ir.AffineMap.get(loops, 0, dims[:rank])
    kernel = fill(0.0, [size])
    sums = generic(
        [padded, kernel],
        [window, taps, out_map],
        fill(0.0, shape),
        lambda a: arith.AddFOp(a[0], a[2]).result,
        ["parallel"] * rank + ["reduction"],
    )

    def normalized(a: Sequence[ir.Value]) -> ir.Value:
        base = arith.AddFOp(scalar(bias), arith.MulFOp(a[1], scalar(alpha / size)).result).result
        return arith.DivFOp(a[0], mmath.PowFOp(base, scalar(beta)).result).result

    return generic([x, sums], [ident, ident, ident], empty(shape), normalized)
