"""Lowering of elementwise `wpk` ops to all-parallel `linalg.generic` ops.

Every elementwise op is one step of the fused kernels (woodpecker.ops): its lowering is the
step's scalar builder, registered here with `@lowers_step(KIND)`, in a `linalg.generic` over
the result (binary ops broadcast like numpy). The same builders compute the epilogues of the
fused kernels (`emit_steps`, used by lowering/fused.py). batch_norm broadcasts its per-channel
parameters along dimension 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from mlir import ir
from mlir.dialects import arith
from mlir.dialects import math as mmath

from woodpecker.dialect import attr_float, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    elementwise,
    empty,
    generic,
    identity_map,
    projection_map,
    scalar,
)
from woodpecker.lowering.registry import lowers
from woodpecker.ops import elementwise as ew
from woodpecker.ops.registry import op_step, step_op_names
from woodpecker.ops.steps import Step, StepKind

ScalarStep = Callable[[ir.Value, ir.Value | None, tuple[float, ...]], ir.Value]
"""Scalar ops of one step inside a linalg.generic body: (v, side scalar or None, params) -> value."""

_STEP_LOWERINGS: dict[str, ScalarStep] = {}

STEP_LOWERINGS: Mapping[str, ScalarStep] = MappingProxyType(_STEP_LOWERINGS)
"""Step name -> its scalar builder, for every step kind of woodpecker.ops."""


def lowers_step(kind: StepKind) -> Callable[[ScalarStep], ScalarStep]:
    """Registers the decorated scalar builder as the lowering of step `kind`."""

    def register(fn: ScalarStep) -> ScalarStep:
        if kind.name in _STEP_LOWERINGS:
            raise ValueError(f"step '{kind.name}' already has a lowering")
        _STEP_LOWERINGS[kind.name] = fn
        return fn

    return register


def _out_shape(op: ir.Operation) -> list[int]:
    return shape_of(op.results[0])


# ----------------------------------------------------------------------------
# Scalar builders (inside a linalg.generic body).


def relu_scalar(x: ir.Value) -> ir.Value:
    return arith.MaximumFOp(x, scalar(0.0)).result


def sigmoid_scalar(x: ir.Value) -> ir.Value:
    e = mmath.ExpOp(arith.NegFOp(x).result).result
    return arith.DivFOp(scalar(1.0), arith.AddFOp(scalar(1.0), e).result).result


def clip_scalar(x: ir.Value, lo: float, hi: float) -> ir.Value:
    """min(max(x, lo), hi): with lo > hi every element becomes hi, as in ONNX."""
    if not (math.isinf(lo) and lo < 0):
        x = arith.MaximumFOp(x, scalar(lo)).result
    if not (math.isinf(hi) and hi > 0):
        x = arith.MinimumFOp(x, scalar(hi)).result
    return x


Side = ir.Value | None
Params = tuple[float, ...]


@lowers_step(ew.ADD)
def _add(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return arith.AddFOp(v, s).result


@lowers_step(ew.SUB)
def _sub(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return arith.SubFOp(v, s).result


@lowers_step(ew.MUL)
def _mul(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return arith.MulFOp(v, s).result


@lowers_step(ew.DIV)
def _div(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return arith.DivFOp(v, s).result


@lowers_step(ew.RSUB)
def _rsub(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return arith.SubFOp(s, v).result


@lowers_step(ew.RDIV)
def _rdiv(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return arith.DivFOp(s, v).result


@lowers_step(ew.RELU)
def _relu(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return relu_scalar(v)


@lowers_step(ew.SIGMOID)
def _sigmoid(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return sigmoid_scalar(v)


@lowers_step(ew.TANH)
def _tanh(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return mmath.TanhOp(v).result


@lowers_step(ew.SILU)
def _silu(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return arith.MulFOp(v, sigmoid_scalar(v)).result


@lowers_step(ew.LEAKY_RELU)
def _leaky_relu(v: ir.Value, s: Side, p: Params) -> ir.Value:
    negative = arith.MulFOp(v, scalar(p[0])).result
    is_positive = arith.CmpFOp(arith.CmpFPredicate.OGE, v, scalar(0.0)).result
    return arith.SelectOp(is_positive, v, negative).result


@lowers_step(ew.CLIP)
def _clip(v: ir.Value, s: Side, p: Params) -> ir.Value:
    return clip_scalar(v, *p)


@lowers_step(ew.HARD_SIGMOID)
def _hard_sigmoid(v: ir.Value, s: Side, p: Params) -> ir.Value:
    """max(0, min(1, alpha * v + beta)), as a clip of the linear part."""
    alpha, beta = p
    return clip_scalar(arith.AddFOp(arith.MulFOp(v, scalar(alpha)).result, scalar(beta)).result, 0.0, 1.0)


@lowers_step(ew.HARD_SWISH)
def _hard_swish(v: ir.Value, s: Side, p: Params) -> ir.Value:
    """v * max(0, min(1, v / 6 + 1/2)), the gate as hard_sigmoid's with alpha = 1/6."""
    return arith.MulFOp(v, _hard_sigmoid(v, None, (1.0 / 6.0, 0.5))).result


def emit_step(step: Step, v: ir.Value, side: ir.Value | None) -> ir.Value:
    """The scalar ops of one fused-kernel step (woodpecker.ops step kinds) applied to `v`."""
    build = _STEP_LOWERINGS.get(step.name)
    if build is None:
        raise LoweringError(f"no lowering for step '{step.name}'")
    if step.binary and side is None:
        raise LoweringError(f"step '{step.name}' has no side operand")
    return build(v, side, step.params)


def emit_steps(steps: Sequence[Step], v: ir.Value, sides: Sequence[ir.Value]) -> ir.Value:
    """All steps in order; binary steps take `sides` (scalars) in order."""
    remaining = list(sides)
    for step in steps:
        v = emit_step(step, v, remaining.pop(0) if step.binary else None)
    return v


# ----------------------------------------------------------------------------
# The unfused ops.


def lower_step_op(op: ir.Operation) -> ir.Value:
    """An elementwise op: its step (parameters from its attributes) in one linalg.generic;
    a binary op's right operand is the step's side operand, broadcast like numpy."""
    step = op_step(op)
    if step is None:
        raise LoweringError("the op is not a step")
    operands = list(op.operands)
    if step.binary:
        return elementwise(operands[:2], _out_shape(op), lambda args: emit_step(step, args[0], args[1]))
    return elementwise(operands[:1], _out_shape(op), lambda args: emit_step(step, args[0], None))


lowers(*(wpk.op_class(name) for name in step_op_names()))(lower_step_op)


@lowers(wpk.BatchNormOp)
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
