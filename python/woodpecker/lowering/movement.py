"""Lowering of the data-movement `wpk` ops: slice, expand and gather_elements.

A positive-step slice is a strided `tensor.extract_slice`; a negative-step slice and
gather_elements are `linalg.generic` gathers over the result that read their source element
with `tensor.extract` (gather_elements' indices an inline i64 constant).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg, tensor

from woodpecker.dialect import attr_int, attr_ints, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    broadcast_to,
    empty,
    generic,
    identity_map,
    index,
    tensor_of,
)
from woodpecker.lowering.registry import lowers


def i64_table(values: np.ndarray) -> ir.Value:
    """An inline `arith.constant` i64 tensor."""
    array = np.ascontiguousarray(values, dtype=np.int64)
    i64 = ir.IntegerType.get_signless(64)
    attr = ir.DenseElementsAttr.get(array, type=i64)
    return arith.ConstantOp(tensor_of(array.shape, i64), attr).result


def as_index(value: ir.Value) -> ir.Value:
    return arith.IndexCastOp(ir.IndexType.get(), value).result


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
    table = i64_table(np.asarray(flat).reshape(out))
    rank = len(out)

    def body(args: Sequence[ir.Value]) -> ir.Value:
        indices = [as_index(args[0]) if d == axis else linalg.IndexOp(d).result for d in range(rank)]
        return tensor.ExtractOp(x, indices).result

    return generic([table], [identity_map(rank), identity_map(rank)], empty(out), body)
