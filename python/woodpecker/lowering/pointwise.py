"""Scalar builders of the steps of ops/pointwise.py (math functions, activations, pow, max, ...).

Registered with `@lowers_step` like those of lowering/elementwise.py; the ops themselves lower
through `lower_step_op` there (one linalg.generic). Transcendentals are `math` ops: the CPU
backend replaces f32 exp, expm1, log, log1p and tanh by the vectorizable arith approximations of
lowering/vector_math.py (backend/expand_math.py) and lowers the others with convert-math-to-llvm
(LLVM intrinsics: sqrt, sin, cos, pow, floor, ceil, roundeven). erf is an explicit rational
approximation in arith ops (`erf_scalar`), not `math.erf`: that one only lowers through libm,
which does not take the vectors of the vectorized schedules.
"""

from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import arith
from mlir.dialects import math as mmath

from woodpecker.lowering.common import scalar
from woodpecker.lowering.elementwise import lowers_step, relu_scalar
from woodpecker.ops import pointwise as pw

Side = ir.Value | None
Params = tuple[float, ...]
Value = ir.Value


def _cmp(predicate: arith.CmpFPredicate, a: Value, b: Value) -> Value:
    return arith.CmpFOp(predicate, a, b).result


def _select(condition: Value, a: Value, b: Value) -> Value:
    return arith.SelectOp(condition, a, b).result


def _mul(a: Value, b: Value) -> Value:
    return arith.MulFOp(a, b).result


def _add(a: Value, b: Value) -> Value:
    return arith.AddFOp(a, b).result


# erf(x) ~ x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (beyond, erf is +-1 in f32): the
# rational approximation of Eigen's generic_fast_erf_float. Its largest relative error in f32
# against float64 math.erf is 4.2e-7 over [-10, 10] and down to 1e-30 (tests/py/test_pointwise.py).
ERF_NUMERATOR = (
    -1.60960333262415e-02,
    -2.95459980854025e-03,
    -7.34990630326855e-04,
    -5.69250639462346e-05,
    -2.10102402082508e-06,
    2.77068142495902e-08,
    -2.72614225801306e-10,
)
ERF_DENOMINATOR = (
    -1.42647390514189e-02,
    -7.37332916720468e-03,
    -1.68282697438203e-03,
    -2.13374055278905e-04,
    -1.45660718464996e-05,
)
ERF_CLAMP = 4.0


def _polynomial(x: Value, coefficients: tuple[float, ...]) -> Value:
    """c0 + c1 x + c2 x^2 + ... by Horner's rule."""
    result = scalar(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = _add(_mul(result, x), scalar(c))
    return result


def erf_scalar(v: Value) -> Value:
    """erf(v) by the rational approximation above (NaN stays NaN: the clamps propagate it)."""
    x = arith.MinimumFOp(arith.MaximumFOp(v, scalar(-ERF_CLAMP)).result, scalar(ERF_CLAMP)).result
    x2 = _mul(x, x)
    numerator = _mul(x, _polynomial(x2, ERF_NUMERATOR))
    return arith.DivFOp(numerator, _polynomial(x2, ERF_DENOMINATOR)).result


def softplus_scalar(v: Value) -> Value:
    """max(v, 0) + log1p(exp(-|v|)): log(1 + exp(v)) without overflow."""
    tail = mmath.Log1pOp(mmath.ExpOp(arith.NegFOp(mmath.AbsFOp(v).result).result).result).result
    return _add(relu_scalar(v), tail)


def expm1_negative(v: Value) -> Value:
    """exp(min(v, 0)) - 1 (the negative branch of elu, selu, celu; no overflow for large v)."""
    return mmath.ExpM1Op(arith.MinimumFOp(v, scalar(0.0)).result).result


def prelu_scalar(x: Value, slope: Value) -> Value:
    return _select(_cmp(arith.CmpFPredicate.OGE, x, scalar(0.0)), x, _mul(slope, x))


@lowers_step(pw.SQRT)
def _sqrt(v: Value, s: Side, p: Params) -> Value:
    return mmath.SqrtOp(v).result


@lowers_step(pw.ERF)
def _erf(v: Value, s: Side, p: Params) -> Value:
    return erf_scalar(v)


@lowers_step(pw.EXP)
def _exp(v: Value, s: Side, p: Params) -> Value:
    return mmath.ExpOp(v).result


@lowers_step(pw.LOG)
def _log(v: Value, s: Side, p: Params) -> Value:
    return mmath.LogOp(v).result


@lowers_step(pw.NEG)
def _neg(v: Value, s: Side, p: Params) -> Value:
    return arith.NegFOp(v).result


@lowers_step(pw.ABS)
def _abs(v: Value, s: Side, p: Params) -> Value:
    return mmath.AbsFOp(v).result


@lowers_step(pw.RECIPROCAL)
def _reciprocal(v: Value, s: Side, p: Params) -> Value:
    return arith.DivFOp(scalar(1.0), v).result


@lowers_step(pw.FLOOR)
def _floor(v: Value, s: Side, p: Params) -> Value:
    return mmath.FloorOp(v).result


@lowers_step(pw.CEIL)
def _ceil(v: Value, s: Side, p: Params) -> Value:
    return mmath.CeilOp(v).result


@lowers_step(pw.ROUND)
def _round(v: Value, s: Side, p: Params) -> Value:
    return mmath.RoundEvenOp(v).result


@lowers_step(pw.SIGN)
def _sign(v: Value, s: Side, p: Params) -> Value:
    """1 if v > 0, -1 if v < 0, else v itself (so 0 stays 0 and NaN stays NaN)."""
    negative = _select(_cmp(arith.CmpFPredicate.OLT, v, scalar(0.0)), scalar(-1.0), v)
    return _select(_cmp(arith.CmpFPredicate.OGT, v, scalar(0.0)), scalar(1.0), negative)


@lowers_step(pw.SOFTPLUS)
def _softplus(v: Value, s: Side, p: Params) -> Value:
    return softplus_scalar(v)


@lowers_step(pw.SOFTSIGN)
def _softsign(v: Value, s: Side, p: Params) -> Value:
    return arith.DivFOp(v, _add(scalar(1.0), mmath.AbsFOp(v).result)).result


@lowers_step(pw.MISH)
def _mish(v: Value, s: Side, p: Params) -> Value:
    return _mul(v, mmath.TanhOp(softplus_scalar(v)).result)


@lowers_step(pw.SIN)
def _sin(v: Value, s: Side, p: Params) -> Value:
    return mmath.SinOp(v).result


@lowers_step(pw.COS)
def _cos(v: Value, s: Side, p: Params) -> Value:
    return mmath.CosOp(v).result


@lowers_step(pw.GELU)
def _gelu(v: Value, s: Side, p: Params) -> Value:
    """v / 2 * (1 + erf(v / sqrt 2))."""
    e = erf_scalar(_mul(v, scalar(math.sqrt(0.5))))
    return _mul(_mul(v, scalar(0.5)), _add(scalar(1.0), e))


@lowers_step(pw.GELU_TANH)
def _gelu_tanh(v: Value, s: Side, p: Params) -> Value:
    """v / 2 * (1 + tanh(sqrt(2 / pi) * (v + 0.044715 v^3)))."""
    cube = _mul(_mul(v, v), v)
    inner = _mul(scalar(pw.GELU_TANH_SCALE), _add(v, _mul(scalar(pw.GELU_TANH_CUBIC), cube)))
    return _mul(_mul(v, scalar(0.5)), _add(scalar(1.0), mmath.TanhOp(inner).result))


@lowers_step(pw.ELU)
def _elu(v: Value, s: Side, p: Params) -> Value:
    negative = _mul(scalar(p[0]), expm1_negative(v))
    return _select(_cmp(arith.CmpFPredicate.OGT, v, scalar(0.0)), v, negative)


@lowers_step(pw.SELU)
def _selu(v: Value, s: Side, p: Params) -> Value:
    alpha, gamma = p
    negative = _mul(scalar(alpha), expm1_negative(v))
    return _mul(scalar(gamma), _select(_cmp(arith.CmpFPredicate.OGT, v, scalar(0.0)), v, negative))


@lowers_step(pw.CELU)
def _celu(v: Value, s: Side, p: Params) -> Value:
    """max(0, v) + min(0, alpha * (exp(v / alpha) - 1))."""
    alpha = p[0]
    scaled = arith.DivFOp(v, scalar(alpha)).result
    negative = arith.MinimumFOp(scalar(0.0), _mul(scalar(alpha), expm1_negative(scaled))).result
    return _add(relu_scalar(v), negative)


@lowers_step(pw.THRESHOLDED_RELU)
def _thresholded_relu(v: Value, s: Side, p: Params) -> Value:
    return _select(_cmp(arith.CmpFPredicate.OGT, v, scalar(p[0])), v, scalar(0.0))


@lowers_step(pw.POW)
def _pow(v: Value, s: Side, p: Params) -> Value:
    return mmath.PowFOp(v, s).result


@lowers_step(pw.RPOW)
def _rpow(v: Value, s: Side, p: Params) -> Value:
    return mmath.PowFOp(s, v).result


@lowers_step(pw.MAX)
def _max(v: Value, s: Side, p: Params) -> Value:
    return arith.MaximumFOp(v, s).result


@lowers_step(pw.MIN)
def _min(v: Value, s: Side, p: Params) -> Value:
    return arith.MinimumFOp(v, s).result


@lowers_step(pw.MOD)
def _mod(v: Value, s: Side, p: Params) -> Value:
    return arith.RemFOp(v, s).result


@lowers_step(pw.RMOD)
def _rmod(v: Value, s: Side, p: Params) -> Value:
    return arith.RemFOp(s, v).result


def floor_mod_scalar(a: Value, b: Value) -> Value:
    """fmod(a, b), plus b where it is non-zero and its sign differs from b's (numpy's mod)."""
    r = arith.RemFOp(a, b).result
    zero = scalar(0.0)
    nonzero = _cmp(arith.CmpFPredicate.ONE, r, zero)
    signs_differ = arith.XOrIOp(_cmp(arith.CmpFPredicate.OLT, r, zero), _cmp(arith.CmpFPredicate.OLT, b, zero)).result
    adjust = arith.AndIOp(nonzero, signs_differ).result
    return _select(adjust, _add(r, b), r)


@lowers_step(pw.FLOOR_MOD)
def _floor_mod(v: Value, s: Side, p: Params) -> Value:
    return floor_mod_scalar(v, s)


@lowers_step(pw.RFLOOR_MOD)
def _rfloor_mod(v: Value, s: Side, p: Params) -> Value:
    return floor_mod_scalar(s, v)


@lowers_step(pw.PRELU)
def _prelu(v: Value, s: Side, p: Params) -> Value:
    return prelu_scalar(v, s)


@lowers_step(pw.RPRELU)
def _rprelu(v: Value, s: Side, p: Params) -> Value:
    return prelu_scalar(s, v)
