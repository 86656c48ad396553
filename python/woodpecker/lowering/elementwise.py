"""Lowering of elementwise `wpk` ops to all-parallel `linalg.generic` ops.

Binary ops broadcast like numpy; batch_norm broadcasts its per-channel
parameters along dimension 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from mlir import ir
from mlir.dialects import arith
from mlir.dialects import math as mmath

from woodpecker.dialect import attr_float, shape_of
from woodpecker.lowering.common import (
    LoweringError,
    elementwise,
    empty,
    generic,
    identity_map,
    projection_map,
    scalar,
)

_BINARY: dict[str, Callable[[ir.Value, ir.Value], ir.Value]] = {
    "wpk.add": lambda a, b: arith.AddFOp(a, b).result,
    "wpk.sub": lambda a, b: arith.SubFOp(a, b).result,
    "wpk.mul": lambda a, b: arith.MulFOp(a, b).result,
    "wpk.div": lambda a, b: arith.DivFOp(a, b).result,
}


def _out_shape(op: ir.Operation) -> list[int]:
    return shape_of(op.results[0])


def lower_binary(op: ir.Operation) -> ir.Value:
    fn = _BINARY[op.name]
    lhs, rhs = op.operands[0], op.operands[1]
    return elementwise([lhs, rhs], _out_shape(op), lambda args: fn(args[0], args[1]))


def _unary(op: ir.Operation, fn: Callable[[ir.Value], ir.Value]) -> ir.Value:
    return elementwise([op.operands[0]], _out_shape(op), lambda args: fn(args[0]))


def lower_relu(op: ir.Operation) -> ir.Value:
    return _unary(op, lambda x: arith.MaximumFOp(x, scalar(0.0)).result)


def _sigmoid(x: ir.Value) -> ir.Value:
    e = mmath.ExpOp(arith.NegFOp(x).result).result
    return arith.DivFOp(scalar(1.0), arith.AddFOp(scalar(1.0), e).result).result


def lower_sigmoid(op: ir.Operation) -> ir.Value:
    return _unary(op, _sigmoid)


def lower_tanh(op: ir.Operation) -> ir.Value:
    return _unary(op, lambda x: mmath.TanhOp(x).result)


def lower_leaky_relu(op: ir.Operation) -> ir.Value:
    alpha = attr_float(op, "alpha")

    def body(x: ir.Value) -> ir.Value:
        negative = arith.MulFOp(x, scalar(alpha)).result
        is_positive = arith.CmpFOp(arith.CmpFPredicate.OGE, x, scalar(0.0)).result
        return arith.SelectOp(is_positive, x, negative).result

    return _unary(op, body)


def lower_clip(op: ir.Operation) -> ir.Value:
    """min(max(x, min), max): with min > max every element becomes max, as in ONNX."""
    lo, hi = attr_float(op, "min"), attr_float(op, "max")

    def body(x: ir.Value) -> ir.Value:
        if not (math.isinf(lo) and lo < 0):
            x = arith.MaximumFOp(x, scalar(lo)).result
        if not (math.isinf(hi) and hi > 0):
            x = arith.MinimumFOp(x, scalar(hi)).result
        return x

    return _unary(op, body)


def lower_batch_norm(op: ir.Operation) -> ir.Value:
    """(x - mean) * scale / sqrt(var + eps) + bias, parameters indexed by dimension 1."""
    x, scale, bias, mean, var = (op.operands[i] for i in range(5))
    eps = attr_float(op, "epsilon")
    shape = shape_of(x)
    if len(shape) < 2:
        raise LoweringError(f"batch_norm input must have rank >= 2, got shape {shape}")
    params: Sequence[ir.Value] = (scale, bias, mean, var)
    for param in params:
        if shape_of(param) != [shape[1]]:
            raise LoweringError(f"batch_norm parameter shape {shape_of(param)} is not [{shape[1]}]")
    rank = len(shape)

    def body(args: Sequence[ir.Value]) -> ir.Value:
        xv, s, b, m, v = args[:5]
        centered = arith.SubFOp(xv, m).result
        std = mmath.SqrtOp(arith.AddFOp(v, scalar(eps)).result).result
        normalized = arith.DivFOp(arith.MulFOp(centered, s).result, std).result
        return arith.AddFOp(normalized, b).result

    channel = projection_map(rank, [1])
    maps = [identity_map(rank), channel, channel, channel, channel, identity_map(rank)]
    return generic([x, scale, bias, mean, var], maps, empty(_out_shape(op)), body)
