"""Lowering of reducing `wpk` ops: softmax, reduce_mean and global_avg_pool."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith
from mlir.dialects import math as mmath

from woodpecker.dialect import attr_bool, attr_int, attr_ints, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    empty,
    generic,
    identity_map,
    projection_map,
    reduce,
    reshape,
    scalar,
)
from woodpecker.lowering.registry import lowers


def _add(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.AddFOp(a, b).result


def _max(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.MaximumFOp(a, b).result


@lowers(wpk.SoftmaxOp)
def lower_softmax(op: ir.Operation) -> ir.Value:
    """Numerically stable: exp(x - max) / sum(exp(x - max)) along `axis`."""
    x, axis = op.operands[0], attr_int(op, "axis")
    shape = shape_of(x)
    rank = len(shape)
    if not 0 <= axis < rank:
        raise LoweringError(f"softmax axis {axis} is out of range for shape {shape}")
    kept = projection_map(rank, [d for d in range(rank) if d != axis])
    ident = identity_map(rank)

    peak = reduce(x, [axis], -math.inf, _max)
    exps = generic(
        [x, peak],
        [ident, kept, ident],
        empty(shape),
        lambda args: mmath.ExpOp(arith.SubFOp(args[0], args[1]).result).result,
    )
    total = reduce(exps, [axis], 0.0, _add)
    return generic(
        [exps, total],
        [ident, kept, ident],
        empty(shape),
        lambda args: arith.DivFOp(args[0], args[1]).result,
    )


def mean(value: ir.Value, axes: Sequence[int], out_shape: Sequence[int]) -> ir.Value:
    """Sum over `axes`, scale by 1 / count, then reshape to `out_shape` (keepdims or not)."""
    shape = shape_of(value)
    count = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    summed = reduce(value, axes, 0.0, _add)
    scale = 1.0 / count if count else math.nan
    reduced_shape = shape_of(summed)
    rank = len(reduced_shape)
    scaled = generic(
        [summed],
        [identity_map(rank), identity_map(rank)],
        empty(reduced_shape),
        lambda args: arith.MulFOp(args[0], scalar(scale)).result,
    )
    return reshape(scaled, out_shape)


@lowers(wpk.ReduceMeanOp)
def lower_reduce_mean(op: ir.Operation) -> ir.Value:
    x = op.operands[0]
    shape, out = shape_of(x), shape_of(op.results[0])
    rank = len(shape)
    axes, keepdims = attr_ints(op, "axes"), attr_bool(op, "keepdims")
    if not axes:
        if out == shape:  # noop_with_empty_axes
            return x
        axes = list(range(rank))
    if sorted(set(axes)) != list(axes) or any(not 0 <= a < rank for a in axes):
        raise LoweringError(f"axes {axes} must be sorted, unique and in [0, {rank})")
    if keepdims:
        expected = [1 if d in axes else s for d, s in enumerate(shape)]
    else:
        expected = [s for d, s in enumerate(shape) if d not in axes]
    if out != expected:
        raise LoweringError(f"reduce_mean result shape {out} is not the expected {expected}")
    return mean(x, axes, out)


@lowers(wpk.GlobalAvgPoolOp)
def lower_global_avg_pool(op: ir.Operation) -> ir.Value:
    """Mean over every dim after N, C; the result keeps them as size 1."""
    x = op.operands[0]
    shape = shape_of(x)
    if len(shape) < 3:
        raise LoweringError(f"global_avg_pool needs an N x C x spatial input, got shape {shape}")
    out = shape_of(op.results[0])
    expected = [*shape[:2], *([1] * (len(shape) - 2))]
    if out != expected:
        raise LoweringError(f"global_avg_pool result shape {out} is not the expected {expected}")
    return mean(x, list(range(2, len(shape))), out)
