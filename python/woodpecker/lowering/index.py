"""Lowering of the index ops (arg_reduce, integer_binary, integer_unary, cumsum, trilu) to
`linalg.generic` with `arith` scalar bodies.

* arg_reduce: the extremum along the axis (one reduction), then the first (or last) index
  holding it (a second reduction of i64 indices), reshaped for keepdims; a NaN is the
  extremum of f32 data, as in numpy.
* integer_*: signless integers read as signed; div is `arith.divsi` (truncating), mod
  `arith.remsi`, floor_mod remsi corrected to the divisor's sign; a zero divisor reads 1 and
  gives 0, and a divisor of -1 negates (wrapping) so INT_MIN / -1 cannot trap.
* cumsum: out[..., i, ...] = sum over j of x[..., j, ...] where j <= i (j < i exclusive;
  j >= i, j > i reversed): one generic with the axis as an extra reduction loop, O(n^2) along
  the axis (the axes exporters cumsum over are short: position ids, masks).
* take_along_axis: tensor.extract of data at the loaded index (normalized and clamped like
  wpk.gather's) in a generic over the indices.
* trilu: a select on the last two loop indices; an i1 tensor is stored as i8 and its zero is 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from woodpecker.dialect import attr_bool, attr_int, attr_str, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    broadcast_map,
    empty,
    generic,
    identity_map,
    projection_map,
    reshape,
    storage_element,
)
from woodpecker.lowering.registry import lowers


def _element(value: ir.Value) -> ir.Type:
    return ir.RankedTensorType(value.type).element_type


def _is_float(t: ir.Type) -> bool:
    return isinstance(t, ir.F32Type)


def _constant(t: ir.Type, value: float) -> ir.Value:
    if _is_float(t):
        return arith.ConstantOp(t, float(value)).result
    return arith.ConstantOp(t, ir.IntegerAttr.get(t, int(value))).result


def _filled(value: ir.Value, shape: Sequence[int]) -> ir.Value:
    return linalg.fill(value, outs=[empty(shape, value.type)])


def _index_as(t: ir.Type, dim: int) -> ir.Value:
    """The loop index `dim` of the enclosing linalg.generic as an integer of type `t`."""
    return arith.index_cast(t, linalg.IndexOp(dim).result)


# ----------------------------------------------------------------------------
# arg_reduce.


def _extremum(kind: str, element: ir.Type) -> tuple[float, Callable[[ir.Value, ir.Value], ir.Value]]:
    """The identity and combiner of max/min over `element` (f32 NaN-propagating)."""
    if _is_float(element):
        if kind == "max":
            return -math.inf, arith.maximumf
        return math.inf, arith.minimumf
    width = ir.IntegerType(element).width
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return (low, arith.maxsi) if kind == "max" else (high, arith.minsi)


def _hit(x: ir.Value, peak: ir.Value) -> ir.Value:
    """Whether element `x` is the extremum `peak`. A NaN peak (the f32 combiners propagate
    it) is hit by the NaN elements, so the index is a NaN's, as numpy's argmax gives."""
    if _is_float(x.type):
        equal = arith.cmpf(arith.CmpFPredicate.OEQ, x, peak)
        return arith.ori(equal, arith.cmpf(arith.CmpFPredicate.UNO, x, x))
    return arith.cmpi(arith.CmpIPredicate.eq, x, peak)


@lowers(wpk.ArgReduceOp)
def lower_arg_reduce(op: ir.Operation) -> ir.Value:
    x = op.operands[0]
    kind, axis = attr_str(op, "kind"), attr_int(op, "axis")
    last = attr_bool(op, "select_last_index")
    shape = shape_of(x)
    if kind not in ("max", "min"):
        raise LoweringError(f"unknown arg_reduce kind '{kind}'")
    if not 0 <= axis < len(shape):
        raise LoweringError(f"axis {axis} is out of range for input {shape}")
    rank, element = len(shape), _element(x)
    kept_dims = [d for d in range(rank) if d != axis]
    kept_shape = [shape[d] for d in kept_dims]
    ident, kept = identity_map(rank), projection_map(rank, kept_dims)
    iterators = ["reduction" if d == axis else "parallel" for d in range(rank)]
    start, combine = _extremum(kind, element)
    peak = generic(
        [x], [ident, kept], _filled(_constant(element, start), kept_shape), lambda a: combine(a[0], a[1]), iterators
    )
    i64 = ir.IntegerType.get_signless(64)
    # The first index: min over the hits (none: the axis size); the last: max (none: -1).
    miss, pick = (-1, arith.maxsi) if last else (shape[axis], arith.minsi)

    def position(a: Sequence[ir.Value]) -> ir.Value:
        candidate = arith.select(_hit(a[0], a[1]), _index_as(i64, axis), _constant(i64, miss))
        return pick(candidate, a[2])

    found = generic([x, peak], [ident, kept, kept], _filled(_constant(i64, miss), kept_shape), position, iterators)
    return reshape(found, shape_of(op.results[0]))


# ----------------------------------------------------------------------------
# Integer arithmetic.


def _safe_divisor(b: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(b == 0, b == -1, a divisor that is neither 0 nor -1): divsi/remsi trap on x / 0 and
    INT_MIN / -1, so those lanes divide by 1 and select their result apart."""
    t = b.type
    zero = arith.cmpi(arith.CmpIPredicate.eq, b, _constant(t, 0))
    minus_one = arith.cmpi(arith.CmpIPredicate.eq, b, _constant(t, -1))
    divisor = arith.select(arith.ori(zero, minus_one), _constant(t, 1), b)
    return zero, minus_one, divisor


def _div(a: ir.Value, b: ir.Value) -> ir.Value:
    zero, minus_one, divisor = _safe_divisor(b)
    t = a.type
    quotient = arith.select(minus_one, arith.subi(_constant(t, 0), a), arith.divsi(a, divisor))
    return arith.select(zero, _constant(t, 0), quotient)


def _mod(a: ir.Value, b: ir.Value) -> ir.Value:
    """The remainder with the sign of a (x % -1 is 0)."""
    zero, minus_one, divisor = _safe_divisor(b)
    t = a.type
    return arith.select(arith.ori(zero, minus_one), _constant(t, 0), arith.remsi(a, divisor))


def _floor_mod(a: ir.Value, b: ir.Value) -> ir.Value:
    """The remainder with the sign of b: r + b where r != 0 and r, b differ in sign."""
    t = a.type
    r = _mod(a, b)
    zero = _constant(t, 0)
    nonzero = arith.cmpi(arith.CmpIPredicate.ne, r, zero)
    negative_r, negative_b = (arith.cmpi(arith.CmpIPredicate.slt, v, zero) for v in (r, b))
    signs_differ = arith.xori(negative_r, negative_b)
    return arith.select(arith.andi(nonzero, signs_differ), arith.addi(r, b), r)


INTEGER_BINARY: dict[str, Callable[[ir.Value, ir.Value], ir.Value]] = {
    "add": arith.addi,
    "sub": arith.subi,
    "mul": arith.muli,
    "div": _div,
    "mod": _mod,
    "floor_mod": _floor_mod,
    "max": arith.maxsi,
    "min": arith.minsi,
}


def _neg(x: ir.Value) -> ir.Value:
    return arith.subi(_constant(x.type, 0), x)


def _abs(x: ir.Value) -> ir.Value:
    return arith.maxsi(x, _neg(x))


INTEGER_UNARY: dict[str, Callable[[ir.Value], ir.Value]] = {"neg": _neg, "abs": _abs}


def _elementwise(inputs: Sequence[ir.Value], out_shape: Sequence[int], body: Callable[..., ir.Value]) -> ir.Value:
    maps = [broadcast_map(shape_of(v), out_shape) for v in inputs]
    maps.append(identity_map(len(out_shape)))
    init = empty(out_shape, _element(inputs[0]))
    return generic(inputs, maps, init, lambda args: body(*args[: len(inputs)]))


@lowers(wpk.IntegerBinaryOp)
def lower_integer_binary(op: ir.Operation) -> ir.Value:
    kind = attr_str(op, "kind")
    if kind not in INTEGER_BINARY:
        raise LoweringError(f"unknown integer_binary kind '{kind}'")
    return _elementwise(list(op.operands), shape_of(op.results[0]), INTEGER_BINARY[kind])


@lowers(wpk.IntegerUnaryOp)
def lower_integer_unary(op: ir.Operation) -> ir.Value:
    kind = attr_str(op, "kind")
    if kind not in INTEGER_UNARY:
        raise LoweringError(f"unknown integer_unary kind '{kind}'")
    return _elementwise([op.operands[0]], shape_of(op.results[0]), INTEGER_UNARY[kind])


# ----------------------------------------------------------------------------
# cumsum, trilu.


@lowers(wpk.CumSumOp)
def lower_cumsum(op: ir.Operation) -> ir.Value:
    x = op.operands[0]
    axis = attr_int(op, "axis")
    exclusive, reverse = attr_bool(op, "exclusive"), attr_bool(op, "reverse")
    shape = shape_of(x)
    if not 0 <= axis < len(shape):
        raise LoweringError(f"axis {axis} is out of range for input {shape}")
    rank, element = len(shape), _element(x)
    inner = rank  # the extra loop: the summed position j along the axis
    read = ir.AffineMap.get(rank + 1, 0, [ir.AffineDimExpr.get(inner if d == axis else d) for d in range(rank)])
    write = projection_map(rank + 1, list(range(rank)))
    predicate = {
        (False, False): arith.CmpIPredicate.sle,
        (True, False): arith.CmpIPredicate.slt,
        (False, True): arith.CmpIPredicate.sge,
        (True, True): arith.CmpIPredicate.sgt,
    }[(exclusive, reverse)]
    add = arith.addf if _is_float(element) else arith.addi

    def body(a: Sequence[ir.Value]) -> ir.Value:
        j, i = linalg.IndexOp(inner).result, linalg.IndexOp(axis).result
        taken = arith.select(arith.cmpi(predicate, j, i), a[0], _constant(element, 0))
        return add(a[1], taken)

    iterators = ["parallel"] * rank + ["reduction"]
    return generic([x], [read, write], _filled(_constant(element, 0), shape), body, iterators)


@lowers(wpk.TakeAlongAxisOp)
def lower_take_along_axis(op: ir.Operation) -> ir.Value:
    """out[i] = data[i with dim `axis` = clamp(norm(indices[i]))]."""
    data, indices = op.operands[0], op.operands[1]
    axis = attr_int(op, "axis")
    data_shape, out_shape = shape_of(data), shape_of(indices)
    if len(data_shape) != len(out_shape) or not 0 <= axis < len(data_shape):
        raise LoweringError(f"take_along_axis of data {data_shape} at indices {out_shape} along axis {axis}")
    size, rank = data_shape[axis], len(out_shape)
    index_element = _element(indices)

    def body(a: Sequence[ir.Value]) -> ir.Value:
        zero, last, extent = (_constant(index_element, v) for v in (0, size - 1, size))
        raw = a[0]
        shifted = arith.select(arith.cmpi(arith.CmpIPredicate.slt, raw, zero), arith.addi(raw, extent), raw)
        position = arith.index_cast(ir.IndexType.get(), arith.minsi(arith.maxsi(shifted, zero), last))
        coords = [position if d == axis else linalg.IndexOp(d).result for d in range(rank)]
        return tensor.extract(data, coords)

    init = empty(out_shape, _element(data))
    return generic([indices], [identity_map(rank), identity_map(rank)], init, body)


@lowers(wpk.TriluOp)
def lower_trilu(op: ir.Operation) -> ir.Value:
    x = op.operands[0]
    upper, k = attr_bool(op, "upper"), attr_int(op, "k")
    shape = shape_of(x)
    rank = len(shape)
    if rank < 2:
        raise LoweringError(f"trilu needs rank >= 2, got shape {shape}")
    stored = storage_element(_element(x))
    i64 = ir.IntegerType.get_signless(64)

    def body(a: Sequence[ir.Value]) -> ir.Value:
        offset = arith.subi(_index_as(i64, rank - 1), _index_as(i64, rank - 2))
        predicate = arith.CmpIPredicate.sge if upper else arith.CmpIPredicate.sle
        keep = arith.cmpi(predicate, offset, _constant(i64, k))
        return arith.select(keep, a[0], _constant(stored, 0))

    return generic([x], [identity_map(rank), identity_map(rank)], empty(shape, stored), body)
