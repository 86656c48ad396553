"""Lowering of reducing `wpk` ops: softmax, log_softmax, hardmax, the reduce_* family,
global_avg_pool and global_max_pool.

Sums are *staged* when they are long (`accumulate`): an f32 accumulator that adds millions of
elements one after the other drifts (each add rounds at the size of the running total), so a
reduction of more than `STAGE_THRESHOLD` elements per output is split into blocks of
`STAGE_BLOCK` elements, each summed on its own, then the block sums are summed (again staged
when there are many): the rounding error grows with the block length plus the number of
blocks instead of with the whole length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg
from mlir.dialects import math as mmath

from woodpecker.dialect import attr_bool, attr_int, attr_ints, shape_of, wpk
from woodpecker.dialect.wpk import OP_CLASSES
from woodpecker.lowering.common import (
    LoweringError,
    empty,
    extract_slice,
    f32,
    generic,
    identity_map,
    projection_map,
    reduce,
    reshape,
    scalar,
    transpose,
)
from woodpecker.lowering.registry import lowers
from woodpecker.ops.reduction import REDUCE_KINDS

STAGE_THRESHOLD = 1 << 14
"""Sums over more elements per output than this are staged."""
STAGE_BLOCK = 1024
"""Elements one block of a staged sum adds sequentially."""
LANES = 16
"""Partial results per output of a reduction over trailing dims (`lane_view`): one AVX-512
vector of f32 (two AVX2 ones)."""
MIN_LANE_STEPS = 8
"""A reduction of fewer than MIN_LANE_STEPS * LANES elements per output stays one loop."""

Combine = Callable[[ir.Value, ir.Value], ir.Value]
Unary = Callable[[ir.Value], ir.Value]


def _add(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.AddFOp(a, b).result


def _mul(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.MulFOp(a, b).result


def _max(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.MaximumFOp(a, b).result


def _min(a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.MinimumFOp(a, b).result


def _square(v: ir.Value) -> ir.Value:
    return arith.MulFOp(v, v).result


def _abs(v: ir.Value) -> ir.Value:
    return mmath.AbsFOp(v).result


def _count(shape: Sequence[int], axes: Sequence[int]) -> int:
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _map_each(value: ir.Value, fn: Unary) -> ir.Value:
    """An all-parallel generic applying `fn` to every element."""
    shape = shape_of(value)
    rank = len(shape)
    return generic([value], [identity_map(rank), identity_map(rank)], empty(shape), lambda args: fn(args[0]))


def _reduced_last(value: ir.Value, axes: Sequence[int]) -> ir.Value:
    """`value` with its kept dims first (in order), then the `axes`, collapsed into one dim."""
    shape = shape_of(value)
    kept = [d for d in range(len(shape)) if d not in set(axes)]
    moved = transpose(value, [*kept, *axes])
    return reshape(moved, [*[shape[d] for d in kept], _count(shape, axes)])


def lane_view(value: ir.Value, axes: Sequence[int]) -> ir.Value | None:
    """`value` as [kept..., n / LANES, LANES] when `axes` are its trailing dims and their n
    elements split into at least MIN_LANE_STEPS rows of LANES, else None.

    Reducing over the n / LANES dim first leaves LANES partial results per output, innermost
    and contiguous in memory: a schedule vectorizes that loop along the reduced (hidden) axis,
    with unit-stride loads, instead of across outputs a whole row apart. A second, short
    reduction then folds the LANES partials."""
    shape = shape_of(value)
    rank = len(shape)
    if not axes or sorted(axes) != list(range(rank - len(axes), rank)):
        return None
    n = _count(shape, axes)
    if n % LANES or n < MIN_LANE_STEPS * LANES:
        return None
    return reshape(value, [*shape[: rank - len(axes)], n // LANES, LANES])


def reduce_lanes(value: ir.Value, axes: Sequence[int], init: float, combine: Combine, first: Combine) -> ir.Value:
    """Reduces over `axes` (dropped): `first(element, acc)` on the elements, `combine` between
    partial results; through `lane_view` where it applies."""
    view = lane_view(value, axes)
    if view is None:
        return reduce(value, axes, init, first)
    k = len(shape_of(view)) - 2
    return reduce(reduce(view, [k], init, first), [k], init, combine)


def accumulate(value: ir.Value, axes: Sequence[int], pre: Unary | None = None) -> ir.Value:
    """The sum of `pre(x)` (x itself without `pre`) over `axes`, dropped from the result; staged
    (see the module docstring) when more than STAGE_THRESHOLD elements fold into one output.
    The last block may be partial (summed on its own, from a slice)."""
    shape = shape_of(value)
    n = _count(shape, axes)
    element = pre or (lambda v: v)
    if n <= STAGE_THRESHOLD:
        return reduce_lanes(value, axes, 0.0, _add, lambda e, acc: _add(element(e), acc))
    flat = _reduced_last(value, axes)
    kept_shape = shape_of(flat)[:-1]
    rank = len(kept_shape) + 1
    blocks = n // STAGE_BLOCK
    fused = lambda e, acc: _add(element(e), acc)  # noqa: E731
    # Whole blocks, each one plain reduction (no lane partials: those would add a buffer of 1/64
    # of the input; the block sums are 1/STAGE_BLOCK of it), then the sum of the block sums.
    whole = extract_slice(flat, [0] * rank, [*kept_shape, blocks * STAGE_BLOCK])
    split = reshape(whole, [*kept_shape, blocks, STAGE_BLOCK])
    total = accumulate(reduce(split, [rank], 0.0, fused), [rank - 1])
    tail = n - blocks * STAGE_BLOCK
    if not tail:
        return total
    # The last, partial block on its own (a slice, no padding), added to the total.
    rest = reduce(
        extract_slice(flat, [0] * (rank - 1) + [blocks * STAGE_BLOCK], [*kept_shape, tail]), [rank - 1], 0.0, fused
    )
    ident = identity_map(len(kept_shape))
    return generic([total, rest], [ident, ident, ident], empty(kept_shape), lambda a: _add(a[0], a[1]))


def _finite_or_zero(v: ir.Value) -> ir.Value:
    """v where finite, 0 for +-inf and NaN (a max of all -inf must not poison x - max)."""
    finite = arith.CmpFOp(arith.CmpFPredicate.OLT, _abs(v), scalar(math.inf)).result
    return arith.SelectOp(finite, v, scalar(0.0)).result


def _shifted_exp_sum(x: ir.Value, axes: Sequence[int]) -> tuple[ir.Value, ir.Value]:
    """(peak, total): the max over `axes` (made finite) and the sum of exp(x - peak)."""
    shape = shape_of(x)
    rank = len(shape)
    kept = projection_map(rank, [d for d in range(rank) if d not in set(axes)])
    ident = identity_map(rank)
    peak = _map_each(reduce_lanes(x, axes, -math.inf, _max, _max), _finite_or_zero)
    exps = generic(
        [x, peak], [ident, kept, ident], empty(shape), lambda a: mmath.ExpOp(arith.SubFOp(a[0], a[1]).result).result
    )
    return peak, accumulate(exps, axes)


@dataclass(frozen=True)
class ReduceLowering:
    """How a reduce kind lowers: a staged sum of `pre(x)` (`init` None) or a plain reduction
    with `combine` from `init`; then `post(v, count)` on each result."""

    init: float | None = None
    combine: Combine | None = None
    pre: Unary | None = None
    post: Callable[[ir.Value, int], ir.Value] | None = None


REDUCE_LOWERINGS: dict[str, ReduceLowering] = {
    "sum": ReduceLowering(),
    "mean": ReduceLowering(post=lambda v, n: arith.MulFOp(v, scalar(1.0 / n if n else math.nan)).result),
    "max": ReduceLowering(init=-math.inf, combine=_max),
    "min": ReduceLowering(init=math.inf, combine=_min),
    "prod": ReduceLowering(init=1.0, combine=_mul),
    "l1": ReduceLowering(pre=_abs),
    "l2": ReduceLowering(pre=_square, post=lambda v, n: mmath.SqrtOp(v).result),
    "sum_square": ReduceLowering(pre=_square),
    "log_sum": ReduceLowering(post=lambda v, n: mmath.LogOp(v).result),
}


def reduced(x: ir.Value, kind: str, axes: Sequence[int]) -> ir.Value:
    """`kind` (a REDUCE_KINDS name) over `axes`, the axes dropped from the result."""
    shape = shape_of(x)
    if kind == "log_sum_exp":
        peak, total = _shifted_exp_sum(x, axes)
        rank = len(shape_of(peak))
        return generic(
            [total, peak],
            [identity_map(rank)] * 3,
            empty(shape_of(peak)),
            lambda a: arith.AddFOp(mmath.LogOp(a[0]).result, a[1]).result,
        )
    how = REDUCE_LOWERINGS[kind]
    if how.combine is not None and how.init is not None:
        out = reduce_lanes(x, axes, how.init, how.combine, how.combine)
    else:
        out = accumulate(x, axes, how.pre)
    if how.post is not None:
        post, n = how.post, _count(shape, axes)
        out = _map_each(out, lambda v: post(v, n))
    return out


def _reduce_axes(op: ir.Operation) -> list[int] | None:
    """The op's axes, checked against its result shape; None for a no-op (empty axes)."""
    x = op.operands[0]
    shape, out = shape_of(x), shape_of(op.results[0])
    rank = len(shape)
    axes, keepdims = attr_ints(op, "axes"), attr_bool(op, "keepdims")
    if not axes:
        if out == shape:  # noop_with_empty_axes
            return None
        axes = list(range(rank))
    if sorted(set(axes)) != list(axes) or any(not 0 <= a < rank for a in axes):
        raise LoweringError(f"axes {axes} must be sorted, unique and in [0, {rank})")
    if keepdims:
        expected = [1 if d in axes else s for d, s in enumerate(shape)]
    else:
        expected = [s for d, s in enumerate(shape) if d not in axes]
    if out != expected:
        raise LoweringError(f"{op.name} result shape {out} is not the expected {expected}")
    return list(axes)


@lowers(*REDUCE_KINDS)
def lower_reduce(op: ir.Operation) -> ir.Value:
    """Every reduce_* op: its kind's reduction over `axes`, reshaped to the result (keepdims)."""
    x = op.operands[0]
    axes = _reduce_axes(op)
    if axes is None:
        return x
    kind = REDUCE_KINDS[OP_CLASSES[op.name]].name
    return reshape(reduced(x, kind, axes), shape_of(op.results[0]))


def _one_axis(op: ir.Operation) -> tuple[ir.Value, int, list[int]]:
    x, axis = op.operands[0], attr_int(op, "axis")
    shape = shape_of(x)
    if not 0 <= axis < len(shape):
        raise LoweringError(f"{op.name} axis {axis} is out of range for shape {shape}")
    return x, axis, shape


@lowers(wpk.SoftmaxOp)
def lower_softmax(op: ir.Operation) -> ir.Value:
    """Numerically stable: exp(x - max) / sum(exp(x - max)) along `axis`."""
    x, axis, shape = _one_axis(op)
    rank = len(shape)
    kept = projection_map(rank, [d for d in range(rank) if d != axis])
    ident = identity_map(rank)
    peak = reduce_lanes(x, [axis], -math.inf, _max, _max)
    exps = generic(
        [x, peak],
        [ident, kept, ident],
        empty(shape),
        lambda args: mmath.ExpOp(arith.SubFOp(args[0], args[1]).result).result,
    )
    total = accumulate(exps, [axis])
    return generic(
        [exps, total],
        [ident, kept, ident],
        empty(shape),
        lambda args: arith.DivFOp(args[0], args[1]).result,
    )


@lowers(wpk.LogSoftmaxOp)
def lower_log_softmax(op: ir.Operation) -> ir.Value:
    """x - max - log(sum(exp(x - max))) along `axis`."""
    x, axis, shape = _one_axis(op)
    rank = len(shape)
    kept = projection_map(rank, [d for d in range(rank) if d != axis])
    ident = identity_map(rank)
    peak, total = _shifted_exp_sum(x, [axis])
    return generic(
        [x, peak, total],
        [ident, kept, kept, ident],
        empty(shape),
        lambda a: arith.SubFOp(arith.SubFOp(a[0], a[1]).result, mmath.LogOp(a[2]).result).result,
    )


def _index_f32(dim: int) -> ir.Value:
    """The loop index `dim` of the enclosing linalg.generic as f32 (exact below 2^24)."""
    i = arith.IndexCastOp(ir.IntegerType.get_signless(64), linalg.IndexOp(dim).result).result
    return arith.SIToFPOp(f32(), i).result


@lowers(wpk.HardmaxOp)
def lower_hardmax(op: ir.Operation) -> ir.Value:
    """1.0 where the index along `axis` is the first index of the maximum, else 0.0."""
    x, axis, shape = _one_axis(op)
    if shape[axis] > 1 << 24:
        raise LoweringError(f"hardmax axis of {shape[axis]} elements: indices past 2^24 are not exact in f32")
    rank = len(shape)
    kept_dims = [d for d in range(rank) if d != axis]
    kept = projection_map(rank, kept_dims)
    ident = identity_map(rank)
    iterators = ["reduction" if d == axis else "parallel" for d in range(rank)]
    peak = reduce(x, [axis], -math.inf, _max)

    def first_index(a: Sequence[ir.Value]) -> ir.Value:
        hit = arith.CmpFOp(arith.CmpFPredicate.OEQ, a[0], a[1]).result
        candidate = arith.SelectOp(hit, _index_f32(axis), scalar(math.inf)).result
        return _min(candidate, a[2])

    init = linalg.fill(scalar(math.inf), outs=[empty([shape[d] for d in kept_dims])])
    first = generic([x, peak], [ident, kept, kept], init, first_index, iterators)

    def one_hot(a: Sequence[ir.Value]) -> ir.Value:
        at = arith.CmpFOp(arith.CmpFPredicate.OEQ, _index_f32(axis), a[0]).result
        return arith.SelectOp(at, scalar(1.0), scalar(0.0)).result

    return generic([first], [kept, ident], empty(shape), one_hot)


def _global_pool(op: ir.Operation, kind: str) -> ir.Value:
    """`kind` over every dim after N, C; the result keeps them as size 1."""
    x = op.operands[0]
    shape = shape_of(x)
    if len(shape) < 3:
        raise LoweringError(f"{op.name} needs an N x C x spatial input, got shape {shape}")
    out = shape_of(op.results[0])
    expected = [*shape[:2], *([1] * (len(shape) - 2))]
    if out != expected:
        raise LoweringError(f"{op.name} result shape {out} is not the expected {expected}")
    return reshape(reduced(x, kind, list(range(2, len(shape)))), out)


@lowers(wpk.GlobalAvgPoolOp)
def lower_global_avg_pool(op: ir.Operation) -> ir.Value:
    return _global_pool(op, "mean")


@lowers(wpk.GlobalMaxPoolOp)
def lower_global_max_pool(op: ir.Operation) -> ir.Value:
    return _global_pool(op, "max")
