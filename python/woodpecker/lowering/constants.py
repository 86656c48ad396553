"""Lowering of `wpk.weight` and `wpk.constant` to `arith.constant`."""

from __future__ import annotations

import numpy as np
from mlir import ir
from mlir.dialects import arith

from woodpecker.dialect import wpk
from woodpecker.dialect.weights import dense_array
from woodpecker.lowering.common import LoweringError, dense_constant, storage_type
from woodpecker.lowering.registry import lowers


@lowers(wpk.WeightOp)
def lower_weight(op: ir.Operation) -> ir.Value:
    """Keeps the dense_resource blob: the backend turns large constants into arguments."""
    attr = op.attributes["value"]
    result_type = op.results[0].type
    if ir.ShapedType(attr.type).shape != ir.ShapedType(result_type).shape:
        raise LoweringError(f"weight value type {attr.type} does not match result type {result_type}")
    return arith.ConstantOp(result_type, attr).result


@lowers(wpk.ConstantOp)
def lower_constant(op: ir.Operation) -> ir.Value:
    attr = op.attributes["value"]
    result_type = op.results[0].type
    if storage_type(result_type) != result_type:
        # A bool constant: stored as i8 (lowering/common.storage_type).
        array = dense_array(attr, list(ir.RankedTensorType(result_type).shape)).astype(np.int8)
        stored = storage_type(result_type)
        dense = ir.DenseElementsAttr.get(np.ascontiguousarray(array), type=ir.RankedTensorType(stored).element_type)
        return arith.ConstantOp(stored, dense).result
    if attr.type == result_type:
        return arith.ConstantOp(result_type, attr).result
    try:
        dense = ir.DenseElementsAttr(attr)
    except ValueError as err:
        raise LoweringError(f"constant value {attr} is not a dense elements attribute") from err
    # An integer or other-shaped dense attribute: rebuild it as f32 of the result shape.
    array = np.array(dense).astype(np.float32)
    shape = ir.RankedTensorType(result_type).shape
    if array.size != int(np.prod(shape, dtype=np.int64)):
        raise LoweringError(f"constant value {attr.type} does not match result type {result_type}")
    return dense_constant(array.reshape(shape))
