"""Converters of the elementwise ops of ops/pointwise.py: math functions, activations, Gelu,
Pow (a constant scalar exponent 1, 2, 3, 0.5 or -1 becomes mul/sqrt/reciprocal), PRelu, Mod
(fmod=1: wpk.mod, fmod=0: wpk.floor_mod), and the variadic Max, Min, Sum, Mean (left-to-right chains of binary
ops; Mean then divides by the count).

Float data, except that all-constant integer inputs of the binary and variadic ops fold at
import and integer (i64, i32) run-time inputs of Neg, Abs, Mod, Max and Min become
`wpk.integer_unary`/`wpk.integer_binary` (importer/converters/index.py); a bool input is
rejected by `ctx.tensor` with a clear error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
from mlir import ir

from woodpecker.dialect import wpk
from woodpecker.importer import shapes
from woodpecker.importer.converters.core import binary, unary
from woodpecker.importer.converters.index import emit_integer_binary, integer_inputs, integer_unary_or
from woodpecker.importer.converters.registry import Result, converts
from woodpecker.importer.node import NodeContext
from woodpecker.importer.values import materialize

SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875

converts("Sqrt")(unary(wpk.SqrtOp))
converts("Erf")(unary(wpk.ErfOp))
converts("Exp")(unary(wpk.ExpOp))
converts("Log")(unary(wpk.LogOp))
converts("Neg")(integer_unary_or("neg", unary(wpk.NegOp)))
converts("Abs")(integer_unary_or("abs", unary(wpk.AbsOp)))
converts("Reciprocal")(unary(wpk.ReciprocalOp))
converts("Floor")(unary(wpk.FloorOp))
converts("Ceil")(unary(wpk.CeilOp))
converts("Round")(unary(wpk.RoundOp))
converts("Sign")(unary(wpk.SignOp))
converts("Softplus")(unary(wpk.SoftplusOp))
converts("Softsign")(unary(wpk.SoftsignOp))
converts("Mish")(unary(wpk.MishOp))
converts("Sin")(unary(wpk.SinOp))
converts("Cos")(unary(wpk.CosOp))
converts("Elu")(unary(wpk.EluOp, alpha=1.0))
converts("Selu")(unary(wpk.SeluOp, alpha=SELU_ALPHA, gamma=SELU_GAMMA))
converts("ThresholdedRelu")(unary(wpk.ThresholdedReluOp, alpha=1.0))
converts("PRelu")(binary(wpk.PReluOp, lambda x, slope: np.where(x >= 0, x, x * slope)))

_celu = unary(wpk.CeluOp, alpha=1.0)
_gelu = unary(wpk.GeluOp)
_gelu_tanh = unary(wpk.GeluTanhOp)


@converts("Celu")
def convert_celu(ctx: NodeContext) -> Sequence[Result]:
    ctx.check(float(ctx.attr("alpha", 1.0)) != 0.0, "alpha must not be 0 (Celu divides by it)")
    return _celu(ctx)


@converts("Gelu")
def convert_gelu(ctx: NodeContext) -> Sequence[Result]:
    approximate = ctx.attr("approximate", "none") or "none"
    if approximate == "none":
        return _gelu(ctx)
    if approximate == "tanh":
        return _gelu_tanh(ctx)
    raise ctx.unsupported(f"approximate '{approximate}' is not supported (expected 'none' or 'tanh')")


# ----------------------------------------------------------------------------
# Pow.

_pow = binary(wpk.PowOp, np.power)


def _constant_exponent(ctx: NodeContext) -> float | None:
    """The exponent when it is a constant scalar (any rank with one element), else None."""
    if not ctx.is_constant(1):
        return None
    array = np.asarray(ctx.values.constants[ctx.input_name(1)])
    if array.size != 1 or array.dtype.kind not in "fiu":
        return None
    return float(array.reshape(-1)[0])


@converts("Pow")
def convert_pow(ctx: NodeContext) -> Sequence[Result]:
    exponent = _constant_exponent(ctx)
    if exponent is None or ctx.is_constant(0) or exponent not in (0.5, 1.0, 2.0, 3.0, -1.0):
        return _pow(ctx)
    x = ctx.tensor(0)
    base_shape = ctx.shape_of(x)
    # A one-element exponent of higher rank still broadcasts the result's rank up.
    exponent_shape = ctx.input_shape(1)
    shape = ctx.output_shape(0, lambda: shapes.broadcast(base_shape, exponent_shape))
    if shape != base_shape:
        return _pow(ctx)
    if exponent == 0.5:
        return [ctx.emit(wpk.SqrtOp, shape, x)]
    if exponent == -1.0:
        return [ctx.emit(wpk.ReciprocalOp, shape, x)]
    if exponent == 1.0:
        return [x]
    square = ctx.emit(wpk.MulOp, shape, x, x)
    return [square if exponent == 2.0 else ctx.emit(wpk.MulOp, shape, square, x)]


# ----------------------------------------------------------------------------
# Mod.


_fmod = binary(wpk.ModOp, np.fmod)
_floor_mod = binary(wpk.FloorModOp, np.mod)


@converts("Mod")
def convert_mod(ctx: NodeContext) -> Sequence[Result]:
    """fmod=1: C fmod (sign of the dividend); fmod=0: Python % (sign of the divisor). Integer
    Mod folds at import (both inputs constant) or is a wpk.integer_binary at run time."""
    fmod = int(ctx.attr("fmod", 0))
    ctx.check(fmod in (0, 1), f"fmod must be 0 or 1, got {fmod}")
    if ctx.is_constant(0) and ctx.is_constant(1):
        a, b = ctx.constant(0, "A"), ctx.constant(1, "B")
        if a.dtype.kind in "iu" or b.dtype.kind in "iu":
            if b.dtype.kind in "iu" and np.any(b == 0):
                raise ctx.shape_error("integer Mod by zero")
            with np.errstate(all="ignore"):
                result = np.fmod(a, b) if fmod else np.mod(a, b)
            return [np.asarray(result).astype(np.result_type(a, b))]
    if integer_inputs(ctx, (0, 1)):
        return [emit_integer_binary(ctx, "mod" if fmod else "floor_mod", (0, 1))]
    return _fmod(ctx) if fmod else _floor_mod(ctx)


# ----------------------------------------------------------------------------
# The variadic ops.

_FOLDS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Max": np.maximum,
    "Min": np.minimum,
    "Sum": np.add,
    "Mean": np.add,
}
_INTEGER_KINDS = {"Max": "max", "Min": "min"}  # ONNX Sum and Mean take float types only
_OPS: dict[str, wpk.OpClass] = {"Max": wpk.MaxOp, "Min": wpk.MinOp, "Sum": wpk.AddOp, "Mean": wpk.AddOp}


def _inputs(ctx: NodeContext) -> list[int]:
    indices = [i for i in range(len(ctx.node.input)) if ctx.has_input(i)]
    if not indices:
        raise ctx.unsupported("at least one input is required")
    return indices


def _scalar_tensor(ctx: NodeContext, value: float) -> ir.Value:
    return materialize(np.asarray(value, dtype=np.float32), f"{ctx.name}_scalar", ctx.values.weights, ctx.loc)


@converts("Max", "Min", "Sum", "Mean")
def convert_variadic(ctx: NodeContext) -> Sequence[Result]:
    indices = _inputs(ctx)
    count = len(indices)
    if all(ctx.is_constant(i) for i in indices):
        arrays = [ctx.constant(i, f"input {i}") for i in indices]
        if all(a.dtype.kind in "iu" for a in arrays) or all(a.size <= 1 << 16 for a in arrays):
            folded = functools.reduce(_FOLDS[ctx.op_type], arrays)
            if ctx.op_type == "Mean":
                folded = folded / count if folded.dtype.kind == "f" else folded // count
            return [np.asarray(folded).astype(arrays[0].dtype)]
    if integer_inputs(ctx, indices):
        if ctx.op_type not in _INTEGER_KINDS:
            raise ctx.unsupported(f"{ctx.op_type} of integer tensors is not supported (ONNX takes float types)")
        return [emit_integer_binary(ctx, _INTEGER_KINDS[ctx.op_type], indices)]
    operands = [ctx.tensor(i) for i in indices]
    in_shapes = [ctx.shape_of(v) for v in operands]
    shape = ctx.output_shape(0, lambda: functools.reduce(shapes.broadcast, in_shapes))
    op = _OPS[ctx.op_type]
    result, partial = operands[0], in_shapes[0]
    for operand, operand_shape in zip(operands[1:], in_shapes[1:], strict=True):
        partial = ctx.compute(shapes.broadcast, partial, operand_shape)
        result = ctx.emit(op, partial, result, operand)
    ctx.check(partial == shape, f"the broadcast of the inputs {partial} differs from the output shape {shape}")
    if ctx.op_type == "Mean" and count > 1:
        result = ctx.emit(wpk.DivOp, shape, result, _scalar_tensor(ctx, float(count)))
    return [result]
