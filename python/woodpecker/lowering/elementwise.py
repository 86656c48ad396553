"""Lowering of elementwise `wpk` ops to all-parallel `linalg.generic` ops.

Binary ops broadcast like numpy; batch_norm broadcasts its per-channel
parameters along dimension 1. The scalar builders here also implement the
steps of the fused kernels (`emit_step`, used by lowering/fused.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from mlir import ir
from mlir.dialects import arith
from mlir.dialects import math as mmath

from woodpecker.dialect import attr_float, shape_of
from woodpecker.dialect.steps import Step
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


# ----------------------------------------------------------------------------
# Scalar builders (inside a linalg.generic body).


def relu_scalar(x: ir.Value) -> ir.Value:
    return arith.MaximumFOp(x, scalar(0.0)).result


def sigmoid_scalar(x: ir.Value) -> ir.Value:
    e = mmath.ExpOp(arith.NegFOp(x).result).result
    return arith.DivFOp(scalar(1.0), arith.AddFOp(scalar(1.0), e).result).result


def tanh_scalar(x: ir.Value) -> ir.Value:
    return mmath.TanhOp(x).result


def leaky_relu_scalar(x: ir.Value, alpha: float) -> ir.Value:
    negative = arith.MulFOp(x, scalar(alpha)).result
    is_positive = arith.CmpFOp(arith.CmpFPredicate.OGE, x, scalar(0.0)).result
    return arith.SelectOp(is_positive, x, negative).result


def clip_scalar(x: ir.Value, lo: float, hi: float) -> ir.Value:
    """min(max(x, lo), hi): with lo > hi every element becomes hi, as in ONNX."""
    if not (math.isinf(lo) and lo < 0):
        x = arith.MaximumFOp(x, scalar(lo)).result
    if not (math.isinf(hi) and hi > 0):
        x = arith.MinimumFOp(x, scalar(hi)).result
    return x


_STEP_BINARY: dict[str, Callable[[ir.Value, ir.Value], ir.Value]] = {
    "add": lambda v, s: arith.AddFOp(v, s).result,
    "sub": lambda v, s: arith.SubFOp(v, s).result,
    "mul": lambda v, s: arith.MulFOp(v, s).result,
    "div": lambda v, s: arith.DivFOp(v, s).result,
    "rsub": lambda v, s: arith.SubFOp(s, v).result,
    "rdiv": lambda v, s: arith.DivFOp(s, v).result,
}


def emit_step(step: Step, v: ir.Value, side: ir.Value | None) -> ir.Value:
    """The scalar ops of one fused-kernel step (dialect/steps.py) applied to `v`."""
    if step.name in _STEP_BINARY:
        if side is None:
            raise LoweringError(f"step '{step.name}' has no side operand")
        return _STEP_BINARY[step.name](v, side)
    if step.name == "relu":
        return relu_scalar(v)
    if step.name == "sigmoid":
        return sigmoid_scalar(v)
    if step.name == "tanh":
        return tanh_scalar(v)
    if step.name == "silu":
        return arith.MulFOp(v, sigmoid_scalar(v)).result
    if step.name == "leaky_relu":
        return leaky_relu_scalar(v, step.params[0])
    if step.name == "clip":
        return clip_scalar(v, *step.params)
    raise LoweringError(f"no lowering for step '{step.name}'")


def emit_steps(steps: Sequence[Step], v: ir.Value, sides: Sequence[ir.Value]) -> ir.Value:
    """All steps in order; binary steps take `sides` (scalars) in order."""
    remaining = list(sides)
    for step in steps:
        v = emit_step(step, v, remaining.pop(0) if step.binary else None)
    return v


# ----------------------------------------------------------------------------
# The unfused ops.


def lower_relu(op: ir.Operation) -> ir.Value:
    return _unary(op, relu_scalar)


def lower_sigmoid(op: ir.Operation) -> ir.Value:
    return _unary(op, sigmoid_scalar)


def lower_tanh(op: ir.Operation) -> ir.Value:
    return _unary(op, tanh_scalar)


def lower_leaky_relu(op: ir.Operation) -> ir.Value:
    alpha = attr_float(op, "alpha")
    return _unary(op, lambda x: leaky_relu_scalar(x, alpha))


def lower_clip(op: ir.Operation) -> ir.Value:
    """min(max(x, min), max): with min > max every element becomes max, as in ONNX."""
    lo, hi = attr_float(op, "min"), attr_float(op, "max")
    return _unary(op, lambda x: clip_scalar(x, lo, hi))


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
