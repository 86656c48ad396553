"""Elementwise ops and their steps: add, sub, mul, div, relu, sigmoid, tanh, leaky_relu, clip,
hard_sigmoid, hard_swish; batch_norm.

Each elementwise op is one step of the fused kernels' language (ops/steps.py): its numpy
semantics IS the step's, its parameters are the op attributes the step kind names. `silu`
(what wpk-fuse makes of `x * sigmoid(x)`) and the swapped binary steps `rsub`/`rdiv` (the
running value on the right) are steps without an op of their own. `STEPS` fixes the order of
the vocabulary (the verifier lists it in that order).
"""

from __future__ import annotations

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import broadcast_shapes, fail, fmt
from woodpecker.ops.steps import StepKind, register_step

Array = np.ndarray
Side = np.ndarray | None
Params = tuple[float, ...]


# ----------------------------------------------------------------------------
# Step semantics (float64 numpy; side operands broadcast like numpy).


def _add(v: Array, s: Side, p: Params) -> Array:
    return v + s


def _sub(v: Array, s: Side, p: Params) -> Array:
    return v - s


def _mul(v: Array, s: Side, p: Params) -> Array:
    return v * s


def _div(v: Array, s: Side, p: Params) -> Array:
    return v / s


def _rsub(v: Array, s: Side, p: Params) -> Array:
    return s - v


def _rdiv(v: Array, s: Side, p: Params) -> Array:
    return s / v


def sigmoid(v: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-v))


def _relu(v: Array, s: Side, p: Params) -> Array:
    return np.maximum(v, 0.0)


def _sigmoid(v: Array, s: Side, p: Params) -> Array:
    return sigmoid(v)


def _tanh(v: Array, s: Side, p: Params) -> Array:
    return np.tanh(v)


def _silu(v: Array, s: Side, p: Params) -> Array:
    return v * sigmoid(v)


def _leaky_relu(v: Array, s: Side, p: Params) -> Array:
    return np.where(v >= 0, v, v * p[0])


def _clip(v: Array, s: Side, p: Params) -> Array:
    """min(max(v, lo), hi): with lo > hi every element becomes hi, as in ONNX."""
    lo, hi = p
    return np.minimum(np.maximum(v, lo), hi)


def _hard_sigmoid(v: Array, s: Side, p: Params) -> Array:
    """ONNX HardSigmoid: max(0, min(1, alpha * v + beta))."""
    alpha, beta = p
    return np.maximum(0.0, np.minimum(1.0, alpha * v + beta))


def _hard_swish(v: Array, s: Side, p: Params) -> Array:
    """ONNX HardSwish: v * HardSigmoid(v) with alpha = 1/6, beta = 1/2."""
    return v * np.maximum(0.0, np.minimum(1.0, v / 6.0 + 0.5))


ADD = StepKind("add", _add, binary=True)
SUB = StepKind("sub", _sub, binary=True)
MUL = StepKind("mul", _mul, binary=True)
DIV = StepKind("div", _div, binary=True)
RSUB = StepKind("rsub", _rsub, binary=True)
RDIV = StepKind("rdiv", _rdiv, binary=True)
RELU = StepKind("relu", _relu)
SIGMOID = StepKind("sigmoid", _sigmoid)
TANH = StepKind("tanh", _tanh)
SILU = StepKind("silu", _silu)
LEAKY_RELU = StepKind("leaky_relu", _leaky_relu, params=("alpha",))
CLIP = StepKind("clip", _clip, params=("min", "max"))
HARD_SIGMOID = StepKind("hard_sigmoid", _hard_sigmoid, params=("alpha", "beta"))
HARD_SWISH = StepKind("hard_swish", _hard_swish)

STEPS = (ADD, SUB, MUL, DIV, RSUB, RDIV, RELU, SIGMOID, TANH, SILU, LEAKY_RELU, CLIP, HARD_SIGMOID, HARD_SWISH)
for _kind in STEPS:
    register_step(_kind)


# ----------------------------------------------------------------------------
# The ops.


def same_shape(args: OpArgs[Shape]) -> Shape:
    return list(args["input"])


def broadcast(args: OpArgs[Shape]) -> Shape:
    lhs, rhs = args["lhs"], args["rhs"]
    out = broadcast_shapes(lhs, rhs)
    if out is None:
        fail(f"operand shapes {fmt(lhs)} and {fmt(rhs)} are not broadcast-compatible")
    return out


def unary_step_op(op: wpk.OpClass, kind: StepKind) -> OpSemantics:
    """A unary op that is the step `kind`, its parameters read from the op attributes the kind names."""

    def evaluate(args: OpArgs[Array]) -> Array:
        return kind.apply(args["input"], None, tuple(float(args.attr(p)) for p in kind.params))

    return OpSemantics(op, shape=same_shape, evaluate=evaluate, step=kind)


def binary_step_op(op: wpk.OpClass, kind: StepKind, swapped: StepKind) -> OpSemantics:
    """A binary op with numpy broadcasting: step `kind` on its left operand, `swapped` on its right."""

    def evaluate(args: OpArgs[Array]) -> Array:
        return kind.apply(args["lhs"], args["rhs"], ())

    return OpSemantics(op, shape=broadcast, evaluate=evaluate, step=kind, swapped_step=swapped)


register(binary_step_op(wpk.AddOp, ADD, ADD))
register(binary_step_op(wpk.SubOp, SUB, RSUB))
register(binary_step_op(wpk.MulOp, MUL, MUL))
register(binary_step_op(wpk.DivOp, DIV, RDIV))
register(unary_step_op(wpk.ReluOp, RELU))
register(unary_step_op(wpk.SigmoidOp, SIGMOID))
register(unary_step_op(wpk.TanhOp, TANH))
register(unary_step_op(wpk.LeakyReluOp, LEAKY_RELU))
register(unary_step_op(wpk.ClipOp, CLIP))
register(unary_step_op(wpk.HardSigmoidOp, HARD_SIGMOID))
register(unary_step_op(wpk.HardSwishOp, HARD_SWISH))


# ----------------------------------------------------------------------------
# batch_norm: per-channel (dimension 1) normalization.

BATCH_NORM_PARAMS = ("scale", "bias", "mean", "variance")


def _batch_norm_shape(args: OpArgs[Shape]) -> Shape:
    x = args["input"]
    if len(x) < 2:
        fail(f"input must be at least 2-D, but has rank {len(x)}")
    for name in BATCH_NORM_PARAMS:
        s = list(args[name])
        if s != [x[1]]:
            fail(f"operand '{name}' shape {fmt(s)} must be [{x[1]}] (one value per channel)")
    return list(x)


def _batch_norm(args: OpArgs[Array]) -> Array:
    x = args["input"]
    channel = [1, -1] + [1] * (x.ndim - 2)
    scale, bias, mean, var = (np.asarray(args[n], dtype=np.float64).reshape(channel) for n in BATCH_NORM_PARAMS)
    return (x - mean) / np.sqrt(var + args.attr("epsilon")) * scale + bias


register(OpSemantics(wpk.BatchNormOp, shape=_batch_norm_shape, evaluate=_batch_norm))
