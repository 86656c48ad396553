"""More elementwise ops and their steps: the math functions (sqrt, exp, log, erf, sin, cos),
sign and rounding, the activations (softplus, softsign, mish, gelu, elu, selu, celu,
thresholded_relu) and the binary pow, max, min, mod (fmod), floor_mod (Python %) and prelu.

Like ops/elementwise.py: each op is one step of the fused kernels' language (ops/steps.py),
its numpy semantics (float64) is the step's; a binary op has a swapped step for the running
value on its right (`rpow`, `rmod`, `rprelu`; max and min are symmetric).
"""

from __future__ import annotations

import math

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.elementwise import binary_step_op, unary_step_op
from woodpecker.ops.registry import register
from woodpecker.ops.steps import StepKind

Array = np.ndarray
Side = np.ndarray | None
Params = tuple[float, ...]

GELU_TANH_SCALE = math.sqrt(2.0 / math.pi)
GELU_TANH_CUBIC = 0.044715

_erf = np.vectorize(math.erf, otypes=[np.float64])


def erf(v: Array) -> Array:
    """The error function in float64 (math.erf elementwise; NaN stays NaN)."""
    v = np.asarray(v, dtype=np.float64)
    return _erf(v) if v.size else v.copy()


def softplus(v: Array) -> Array:
    """log(1 + exp(v)), without overflow for large v."""
    return np.maximum(v, 0.0) + np.log1p(np.exp(-np.abs(v)))


def _sqrt(v: Array, s: Side, p: Params) -> Array:
    return np.sqrt(v)


def _erf_step(v: Array, s: Side, p: Params) -> Array:
    return erf(v)


def _exp(v: Array, s: Side, p: Params) -> Array:
    return np.exp(v)


def _log(v: Array, s: Side, p: Params) -> Array:
    return np.log(v)


def _neg(v: Array, s: Side, p: Params) -> Array:
    return -v


def _abs(v: Array, s: Side, p: Params) -> Array:
    return np.abs(v)


def _reciprocal(v: Array, s: Side, p: Params) -> Array:
    return 1.0 / v


def _floor(v: Array, s: Side, p: Params) -> Array:
    return np.floor(v)


def _ceil(v: Array, s: Side, p: Params) -> Array:
    return np.ceil(v)


def _round(v: Array, s: Side, p: Params) -> Array:
    return np.round(v)  # halves to even, as ONNX Round


def _sign(v: Array, s: Side, p: Params) -> Array:
    return np.sign(v)


def _softplus(v: Array, s: Side, p: Params) -> Array:
    return softplus(v)


def _softsign(v: Array, s: Side, p: Params) -> Array:
    return v / (1.0 + np.abs(v))


def _mish(v: Array, s: Side, p: Params) -> Array:
    return v * np.tanh(softplus(v))


def _sin(v: Array, s: Side, p: Params) -> Array:
    return np.sin(v)


def _cos(v: Array, s: Side, p: Params) -> Array:
    return np.cos(v)


def _gelu(v: Array, s: Side, p: Params) -> Array:
    return 0.5 * v * (1.0 + erf(v / math.sqrt(2.0)))


def _gelu_tanh(v: Array, s: Side, p: Params) -> Array:
    return 0.5 * v * (1.0 + np.tanh(GELU_TANH_SCALE * (v + GELU_TANH_CUBIC * v**3)))


def _elu(v: Array, s: Side, p: Params) -> Array:
    return np.where(v > 0, v, p[0] * np.expm1(np.minimum(v, 0.0)))


def _selu(v: Array, s: Side, p: Params) -> Array:
    alpha, gamma = p
    return gamma * np.where(v > 0, v, alpha * np.expm1(np.minimum(v, 0.0)))


def _celu(v: Array, s: Side, p: Params) -> Array:
    alpha = p[0]
    return np.maximum(v, 0.0) + np.minimum(0.0, alpha * np.expm1(np.minimum(v, 0.0) / alpha))


def _thresholded_relu(v: Array, s: Side, p: Params) -> Array:
    return np.where(v > p[0], v, 0.0)


def _pow(v: Array, s: Side, p: Params) -> Array:
    return np.power(v, s)


def _rpow(v: Array, s: Side, p: Params) -> Array:
    return np.power(s, v)


def _max(v: Array, s: Side, p: Params) -> Array:
    return np.maximum(v, s)


def _min(v: Array, s: Side, p: Params) -> Array:
    return np.minimum(v, s)


def _mod(v: Array, s: Side, p: Params) -> Array:
    return np.fmod(v, s)


def _rmod(v: Array, s: Side, p: Params) -> Array:
    return np.fmod(s, v)


def _floor_mod(v: Array, s: Side, p: Params) -> Array:
    return np.mod(v, s)


def _rfloor_mod(v: Array, s: Side, p: Params) -> Array:
    return np.mod(s, v)


def prelu(x: Array, slope: Array) -> Array:
    return np.where(x >= 0, x, slope * x)


def _prelu(v: Array, s: Side, p: Params) -> Array:
    return prelu(v, s)


def _rprelu(v: Array, s: Side, p: Params) -> Array:
    return prelu(s, v)


SQRT = StepKind("sqrt", _sqrt)
ERF = StepKind("erf", _erf_step)
EXP = StepKind("exp", _exp)
LOG = StepKind("log", _log)
NEG = StepKind("neg", _neg)
ABS = StepKind("abs", _abs)
RECIPROCAL = StepKind("reciprocal", _reciprocal)
FLOOR = StepKind("floor", _floor)
CEIL = StepKind("ceil", _ceil)
ROUND = StepKind("round", _round)
SIGN = StepKind("sign", _sign)
SOFTPLUS = StepKind("softplus", _softplus)
SOFTSIGN = StepKind("softsign", _softsign)
MISH = StepKind("mish", _mish)
SIN = StepKind("sin", _sin)
COS = StepKind("cos", _cos)
GELU = StepKind("gelu", _gelu)
GELU_TANH = StepKind("gelu_tanh", _gelu_tanh)
ELU = StepKind("elu", _elu, params=("alpha",))
SELU = StepKind("selu", _selu, params=("alpha", "gamma"))
CELU = StepKind("celu", _celu, params=("alpha",))
THRESHOLDED_RELU = StepKind("thresholded_relu", _thresholded_relu, params=("alpha",))
POW = StepKind("pow", _pow, binary=True)
RPOW = StepKind("rpow", _rpow, binary=True)
MAX = StepKind("max", _max, binary=True)
MIN = StepKind("min", _min, binary=True)
MOD = StepKind("mod", _mod, binary=True)
RMOD = StepKind("rmod", _rmod, binary=True)
FLOOR_MOD = StepKind("floor_mod", _floor_mod, binary=True)
RFLOOR_MOD = StepKind("rfloor_mod", _rfloor_mod, binary=True)
PRELU = StepKind("prelu", _prelu, binary=True)
RPRELU = StepKind("rprelu", _rprelu, binary=True)

UNARY_OPS: tuple[tuple[wpk.OpClass, StepKind], ...] = (
    (wpk.SqrtOp, SQRT),
    (wpk.ErfOp, ERF),
    (wpk.ExpOp, EXP),
    (wpk.LogOp, LOG),
    (wpk.NegOp, NEG),
    (wpk.AbsOp, ABS),
    (wpk.ReciprocalOp, RECIPROCAL),
    (wpk.FloorOp, FLOOR),
    (wpk.CeilOp, CEIL),
    (wpk.RoundOp, ROUND),
    (wpk.SignOp, SIGN),
    (wpk.SoftplusOp, SOFTPLUS),
    (wpk.SoftsignOp, SOFTSIGN),
    (wpk.MishOp, MISH),
    (wpk.SinOp, SIN),
    (wpk.CosOp, COS),
    (wpk.GeluOp, GELU),
    (wpk.GeluTanhOp, GELU_TANH),
    (wpk.EluOp, ELU),
    (wpk.SeluOp, SELU),
    (wpk.CeluOp, CELU),
    (wpk.ThresholdedReluOp, THRESHOLDED_RELU),
)
BINARY_OPS: tuple[tuple[wpk.OpClass, StepKind, StepKind], ...] = (
    (wpk.PowOp, POW, RPOW),
    (wpk.MaxOp, MAX, MAX),
    (wpk.MinOp, MIN, MIN),
    (wpk.ModOp, MOD, RMOD),
    (wpk.FloorModOp, FLOOR_MOD, RFLOOR_MOD),
    (wpk.PReluOp, PRELU, RPRELU),
)

for _op, _kind in UNARY_OPS:
    register(unary_step_op(_op, _kind))
for _op, _kind, _swapped in BINARY_OPS:
    register(binary_step_op(_op, _kind, _swapped))
