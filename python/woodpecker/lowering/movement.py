"""Lowering of the data-movement `wpk` ops: slice, expand, gather_elements and resize.

A positive-step slice is a strided `tensor.extract_slice`; the rest are `linalg.generic`
gathers over the result that read their source element with `tensor.extract`, their index
tables (gather_elements' indices, resize's taps from ops/resize.py) inline i64 constants.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg, tensor

from woodpecker.dialect import attr_int, attr_ints, attr_str, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    broadcast_to,
    empty,
    f32,
    generic,
    identity_map,
    index,
    projection_map,
    scalar,
    tensor_of,
)
from woodpecker.lowering.registry import lowers
from woodpecker.ops.resize import is_resized, linear_taps, nearest_taps


def _i64_table(values: np.ndarray) -> ir.Value:
    """An inline `arith.constant` i64 tensor."""
    array = np.ascontiguousarray(values, dtype=np.int64)
    i64 = ir.IntegerType.get_signless(64)
    attr = ir.DenseElementsAttr.get(array, type=i64)
    return arith.ConstantOp(tensor_of(array.shape, i64), attr).result


def _as_index(value: ir.Value) -> ir.Value:
    return arith.IndexCastOp(ir.IndexType.get(), value).result


def _f32_array(op: ir.Operation, name: str) -> list[float]:
    return list(ir.DenseF32ArrayAttr(op.attributes[name]))


@lowers(wpk.SliceOp)
def lower_slice(op: ir.Operation) -> ir.Value:
    x, out = op.operands[0], shape_of(op.results[0])
    starts, steps = attr_ints(op, "starts"), attr_ints(op, "steps")
    shape = shape_of(x)
    if not len(starts) == len(steps) == len(shape) == len(out):
        raise LoweringError(f"slice of {shape} to {out} needs one start and step per dimension")
    for d, (size, start, step, count) in enumerate(zip(shape, starts, steps, out, strict=True)):
        last = start + (count - 1) * step
        if step == 0 or not (0 <= start < size and 0 <= last < size):
            raise LoweringError(f"dimension {d}: {count} elements from {start} by {step} leave the input size {size}")
    if all(step > 0 for step in steps):
        return tensor.ExtractSliceOp(tensor_of(out), x, [], [], [], starts, out, steps).result

    def body(args: Sequence[ir.Value]) -> ir.Value:
        indices = []
        for d, (start, step) in enumerate(zip(starts, steps, strict=True)):
            i = linalg.IndexOp(d).result
            if step != 1:
                i = arith.MulIOp(i, index(step)).result
            if start:
                i = arith.AddIOp(i, index(start)).result
            indices.append(i)
        return tensor.ExtractOp(x, indices).result

    return generic([], [identity_map(len(out))], empty(out), body)


@lowers(wpk.ExpandOp)
def lower_expand(op: ir.Operation) -> ir.Value:
    return broadcast_to(op.operands[0], shape_of(op.results[0]))


@lowers(wpk.GatherElementsOp)
def lower_gather_elements(op: ir.Operation) -> ir.Value:
    x, out = op.operands[0], shape_of(op.results[0])
    axis, flat = attr_int(op, "axis"), attr_ints(op, "indices")
    shape = shape_of(x)
    if len(shape) != len(out) or not 0 <= axis < len(out) or len(flat) != int(np.prod(out)):
        raise LoweringError(f"gather_elements of {shape} on axis {axis} to {out} with {len(flat)} indices")
    if any(not 0 <= i < shape[axis] for i in flat):
        raise LoweringError(f"an index lies outside [0, {shape[axis]}) on axis {axis}")
    table = _i64_table(np.asarray(flat).reshape(out))
    rank = len(out)

    def body(args: Sequence[ir.Value]) -> ir.Value:
        indices = [_as_index(args[0]) if d == axis else linalg.IndexOp(d).result for d in range(rank)]
        return tensor.ExtractOp(x, indices).result

    return generic([table], [identity_map(rank), identity_map(rank)], empty(out), body)


@lowers(wpk.ResizeOp)
def lower_resize(op: ir.Operation) -> ir.Value:
    """Nearest: one table of source indices per resized dimension. Linear: per resized
    dimension a low and a high index table and the high tap's weight; the result blends the
    2^k corners of the k resized dimensions."""
    x, out = op.operands[0], shape_of(op.results[0])
    shape, scales = shape_of(x), _f32_array(op, "scales")
    mode, coordinates = attr_str(op, "mode"), attr_str(op, "coordinate_transformation_mode")
    if not len(shape) == len(out) == len(scales):
        raise LoweringError(f"resize of {shape} to {out} needs one scale per dimension, got {scales}")
    rank = len(out)
    axes = [d for d in range(rank) if is_resized(shape[d], out[d], scales[d])]
    tables: list[ir.Value] = []
    maps: list[ir.AffineMap] = []
    try:
        for d in axes:
            if mode == "nearest":
                taps = [nearest_taps(shape[d], out[d], scales[d], coordinates, attr_str(op, "nearest_mode"))]
            elif mode == "linear":
                lo, hi, weight = linear_taps(shape[d], out[d], scales[d], coordinates)
                taps = [lo, hi, weight]
            else:
                raise LoweringError(f"resize mode '{mode}' is not nearest or linear")
            for table in taps:
                is_weight = table.dtype.kind == "f"
                if is_weight:
                    attr = ir.DenseElementsAttr.get(np.ascontiguousarray(table, dtype=np.float32), type=f32())
                    tables.append(arith.ConstantOp(tensor_of(table.shape), attr).result)
                else:
                    tables.append(_i64_table(table))
                maps.append(projection_map(rank, [d]))
    except ValueError as err:
        raise LoweringError(str(err)) from err
    per_axis = 1 if mode == "nearest" else 3

    def body(args: Sequence[ir.Value]) -> ir.Value:
        base = [linalg.IndexOp(d).result for d in range(rank)]
        if mode == "nearest":
            indices = list(base)
            for k, d in enumerate(axes):
                indices[d] = _as_index(args[k])
            return tensor.ExtractOp(x, indices).result
        one = scalar(1.0)
        taps = []
        for k in range(len(axes)):
            lo, hi, w = args[per_axis * k : per_axis * k + 3]
            taps.append(((_as_index(lo), arith.SubFOp(one, w).result), (_as_index(hi), w)))
        total: ir.Value | None = None
        for corner in range(1 << len(axes)):
            indices, weight = list(base), None
            for k, d in enumerate(axes):
                i, w = taps[k][(corner >> k) & 1]
                indices[d] = i
                weight = w if weight is None else arith.MulFOp(weight, w).result
            value = tensor.ExtractOp(x, indices).result
            term = value if weight is None else arith.MulFOp(value, weight).result
            total = term if total is None else arith.AddFOp(total, term).result
        assert total is not None
        return total

    return generic(tables, [*maps, identity_map(rank)], empty(out), body)
