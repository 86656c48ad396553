"""Lowering of the integer, bool and indexing ops (cast, gather, compare, logical, not, is_nan,
is_inf, where) to `linalg.generic` over their result, with `arith` scalar bodies.

Their tensors are f32, i64, i32 or i1 (signless integers read as signed, as ONNX's are); an i1
tensor is stored as i8 after lowering (`common.storage_type`): the bodies read its elements as
`x != 0` and write `zext(b)`. A gather reads its data with `tensor.extract` at the index it
loads, normalized (a negative index counts from the end) and clamped into the axis, so no index
reads outside the data.
"""

from __future__ import annotations

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
    storage_element,
)
from woodpecker.lowering.registry import lowers

CMPF = {"eq": "oeq", "lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge"}
CMPI = {"eq": "eq", "lt": "slt", "le": "sle", "gt": "sgt", "ge": "sge"}


def _element(value: ir.Value) -> ir.Type:
    return ir.RankedTensorType(value.type).element_type


def _result_element(op: ir.Operation) -> ir.Type:
    return ir.RankedTensorType(op.results[0].type).element_type


def _is_float(t: ir.Type) -> bool:
    return isinstance(t, ir.F32Type)


def _width(t: ir.Type) -> int:
    return ir.IntegerType(t).width


def _constant(t: ir.Type, value: float | int | bool) -> ir.Value:
    if _is_float(t):
        return arith.ConstantOp(t, float(value)).result
    return arith.ConstantOp(t, ir.IntegerAttr.get(t, int(value))).result


def _is_stored_bool(t: ir.Type) -> bool:
    return isinstance(t, ir.IntegerType) and t.width == 8


def _logical(t: ir.Type) -> ir.Type:
    """The element type an element of stored type `t` stands for (i8 storage: i1)."""
    return ir.IntegerType.get_signless(1) if _is_stored_bool(t) else t


def _load(x: ir.Value) -> ir.Value:
    """A stored element as its logical value (an i8 bool as i1)."""
    if _is_stored_bool(x.type):
        return arith.cmpi(arith.CmpIPredicate.ne, x, _constant(x.type, 0))
    return x


def _store(x: ir.Value) -> ir.Value:
    """A logical value as stored (an i1 as an i8 0 or 1)."""
    stored = storage_element(x.type)
    return arith.extui(stored, x) if stored != x.type else x


def _elementwise(
    inputs: Sequence[ir.Value], out_shape: Sequence[int], element: ir.Type, body: Callable[..., ir.Value]
) -> ir.Value:
    """All-parallel linalg.generic over `out_shape` (result element `element`, stored as
    `storage_element`) with numpy-broadcast inputs; `body` takes the logical scalar inputs."""
    maps = [broadcast_map(shape_of(v), out_shape) for v in inputs]
    maps.append(identity_map(len(out_shape)))
    init = empty(out_shape, storage_element(element))
    return generic(inputs, maps, init, lambda args: _store(body(*[_load(a) for a in args[: len(inputs)]])))


def convert_scalar(x: ir.Value, source: ir.Type, target: ir.Type) -> ir.Value:
    """One element of f32/i64/i32/i1 `source` converted to `target` like ONNX Cast: float to
    integer truncates toward zero; to i1 is x != 0; i1 to a number is 0 or 1."""
    if source == target:
        return x
    if _is_float(source):
        if _is_float(target):
            return x
        if _width(target) == 1:
            return arith.cmpf(arith.CmpFPredicate.UNE, x, _constant(source, 0.0))
        return arith.fptosi(target, x)
    width = _width(source)
    if _is_float(target):
        return arith.uitofp(target, x) if width == 1 else arith.sitofp(target, x)
    target_width = _width(target)
    if target_width == 1:
        return arith.cmpi(arith.CmpIPredicate.ne, x, _constant(source, 0))
    if width == 1:
        return arith.extui(target, x)
    if target_width > width:
        return arith.extsi(target, x)
    return arith.trunci(target, x)


@lowers(wpk.CastOp)
def lower_cast(op: ir.Operation) -> ir.Value:
    x = op.operands[0]
    source, target = _logical(_element(x)), _result_element(op)
    return _elementwise([x], shape_of(op.results[0]), target, lambda v: convert_scalar(v, source, target))


@lowers(wpk.GatherOp)
def lower_gather(op: ir.Operation) -> ir.Value:
    """out[i..., j..., k...] = data[i..., clamp(norm(indices[j...])), k...]."""
    data, indices = op.operands[0], op.operands[1]
    axis = attr_int(op, "axis")
    data_shape, indices_shape = shape_of(data), shape_of(indices)
    out_shape = shape_of(op.results[0])
    if not 0 <= axis < len(data_shape):
        raise LoweringError(f"axis {axis} is out of range for data {data_shape}")
    rank, index_rank = len(out_shape), len(indices_shape)
    if rank != len(data_shape) - 1 + index_rank:
        raise LoweringError(f"result rank {rank} does not match data {data_shape} and indices {indices_shape}")
    size = data_shape[axis]
    index_element = _element(indices)
    maps = [projection_map(rank, list(range(axis, axis + index_rank))), identity_map(rank)]

    def body(args: Sequence[ir.Value]) -> ir.Value:
        raw = args[0]
        zero, last, extent = (_constant(index_element, v) for v in (0, size - 1, size))
        shifted = arith.select(arith.cmpi(arith.CmpIPredicate.slt, raw, zero), arith.addi(raw, extent), raw)
        clamped = arith.minsi(arith.maxsi(shifted, zero), last)
        position = arith.index_cast(ir.IndexType.get(), clamped)
        coords = [linalg.IndexOp(d).result for d in range(axis)]
        coords.append(position)
        coords += [linalg.IndexOp(axis + index_rank + k).result for k in range(len(data_shape) - axis - 1)]
        return tensor.extract(data, coords)

    return generic([indices], maps, empty(out_shape, storage_element(_result_element(op))), body)


@lowers(wpk.CompareOp)
def lower_compare(op: ir.Operation) -> ir.Value:
    lhs, rhs = op.operands[0], op.operands[1]
    predicate = attr_str(op, "predicate")
    if predicate not in CMPF:
        raise LoweringError(f"unknown predicate '{predicate}'")
    element = _logical(_element(lhs))

    def body(a: ir.Value, b: ir.Value) -> ir.Value:
        if _is_float(element):
            return arith.cmpf(getattr(arith.CmpFPredicate, CMPF[predicate].upper()), a, b)
        return arith.cmpi(getattr(arith.CmpIPredicate, CMPI[predicate]), a, b)

    return _elementwise([lhs, rhs], shape_of(op.results[0]), _result_element(op), body)


_LOGICAL = {"and": arith.andi, "or": arith.ori, "xor": arith.xori}


@lowers(wpk.LogicalOp)
def lower_logical(op: ir.Operation) -> ir.Value:
    kind = attr_str(op, "kind")
    if kind not in _LOGICAL:
        raise LoweringError(f"unknown logical kind '{kind}'")
    combine = _LOGICAL[kind]
    return _elementwise(list(op.operands), shape_of(op.results[0]), _result_element(op), combine)


@lowers(wpk.NotOp)
def lower_not(op: ir.Operation) -> ir.Value:
    i1 = _result_element(op)
    return _elementwise([op.operands[0]], shape_of(op.results[0]), i1, lambda v: arith.xori(v, _constant(i1, 1)))


@lowers(wpk.IsNaNOp)
def lower_is_nan(op: ir.Operation) -> ir.Value:
    return _elementwise(
        [op.operands[0]],
        shape_of(op.results[0]),
        _result_element(op),
        lambda v: arith.cmpf(arith.CmpFPredicate.UNO, v, v),
    )


@lowers(wpk.IsInfOp)
def lower_is_inf(op: ir.Operation) -> ir.Value:
    positive, negative = attr_bool(op, "detect_positive"), attr_bool(op, "detect_negative")
    i1 = _result_element(op)

    def body(v: ir.Value) -> ir.Value:
        f32 = v.type
        checks = []
        if positive:
            checks.append(arith.cmpf(arith.CmpFPredicate.OEQ, v, _constant(f32, float("inf"))))
        if negative:
            checks.append(arith.cmpf(arith.CmpFPredicate.OEQ, v, _constant(f32, float("-inf"))))
        if not checks:
            return _constant(i1, 0)
        return checks[0] if len(checks) == 1 else arith.ori(checks[0], checks[1])

    return _elementwise([op.operands[0]], shape_of(op.results[0]), i1, body)


@lowers(wpk.WhereOp)
def lower_where(op: ir.Operation) -> ir.Value:
    return _elementwise(list(op.operands), shape_of(op.results[0]), _result_element(op), arith.select)
