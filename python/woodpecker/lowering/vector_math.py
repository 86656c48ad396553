"""Vector-friendly f32 exp, expm1, log, log1p and tanh in arith ops (Cephes-style approximations).

LLVM has no vector exp/log/tanh on the CPU: it scalarizes `math.exp` and friends on vectors into
one libm call per lane. These builders compute them with polynomials and integer bit tricks
instead, on an f32 scalar or a vector of f32 alike (every constant is made in the operand's type),
so they vectorize as they are. backend/expand_math.py replaces the math ops of the CPU code by
them; the lowerings keep writing the math ops (the GPU backend and the library post-op reader
want those).

* exp: n = round(x log2 e) by the 1.5 * 2^23 trick, r = x - n ln 2 (ln 2 split in two
  constants, Cody-Waite), exp(r) = 1 + r + r^2 P(r) (degree 5, Cephes expf), times 2^n built
  from the exponent bits as 2^(n/2) * 2^(n - n/2), so that results in the denormal range round
  once and n = 128 overflows to inf. x is clamped to [-104, 89] first: beyond, the result is 0 or
  inf anyway; the clamps propagate NaN.
* expm1: the same reduction, 2^n expm1(r) + (2^n - 1) (exact 2^n - 1 for small n, no
  cancellation near 0), or exp(x) - 1 once n > 24.
* log: x = m 2^e with m in [sqrt(1/2), sqrt 2) from the exponent bits (denormals scaled by 2^23
  first), log(m) = f - f^2/2 + f^3 P(f) with f = m - 1 (degree 8, Cephes logf), plus e ln 2
  split in two; log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
* log1p: log(u) * x / (u - 1) with u = 1 + x (x itself where u rounds to 1): Goldberg's
  compensation of the rounding of 1 + x.
* tanh: odd; -expm1(-2|x|) / (expm1(-2|x|) + 2) with the sign of x: no cancellation anywhere
  (expm1 is accurate near 0 where 1 - exp would not be), 1 once exp(-2|x|) is below f32's epsilon.

The floating-point ops carry fastmath<contract>: where the CPU has FMA, LLVM fuses the multiply-adds
of the polynomials and reductions (about 20% faster, and one rounding fewer). Accuracy against
float64: tests/py/test_vector_math.py states the measured maximum errors (all below 2 ulp).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from mlir import ir
from mlir.dialects import arith

Value = ir.Value

# exp.
EXP_LO, EXP_HI = -104.0, 89.0  # exp is below half the smallest denormal / above FLT_MAX beyond
LOG2E = 1.4426950408889634
LN2_HI, LN2_LO = 0.693359375, -2.12194440e-4  # ln 2 = LN2_HI + LN2_LO; n * LN2_HI is exact
ROUND_MAGIC = 12582912.0  # 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits
ROUND_MAGIC_BITS = 0x4B400000  # the bits of ROUND_MAGIC
EXP_POLY = (  # exp(r) = 1 + r + r^2 * P(r) on [-ln2/2, ln2/2], highest degree first
    1.9875691500e-4,
    1.3981999507e-3,
    8.3334519073e-3,
    4.1665795894e-2,
    1.6666665459e-1,
    5.0000001201e-1,
)
EXPM1_EXP_FROM = 24  # above this n, 2^n - 1 is no longer exact in f32: expm1 = exp - 1

# log.
LOG_POLY = (  # log(1 + f) = f - f^2 / 2 + f^3 * P(f) on [sqrt(1/2) - 1, sqrt 2 - 1], highest first
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
)
FLT_MIN = 1.1754943508222875e-38  # the smallest normal f32
DENORMAL_SCALE = 8388608.0  # 2^23
MANTISSA_MASK, HALF_BITS = 0x007FFFFF, 0x3F000000  # the bits of 0.5: m in [0.5, 1)


# ----------------------------------------------------------------------------
# Constants and ops in the type of the operand (f32 or a vector of f32).


def _int_type(t: ir.Type) -> ir.Type:
    i32 = ir.IntegerType.get_signless(32)
    if isinstance(t, ir.VectorType):
        return ir.VectorType.get(t.shape, i32)
    return i32


def is_f32_like(t: ir.Type) -> bool:
    """f32 or a vector of f32: the types these builders take."""
    if isinstance(t, ir.VectorType):
        t = t.element_type
    return isinstance(t, ir.F32Type)


def _splat(t: ir.Type, attr: ir.Attribute) -> Value:
    if isinstance(t, ir.VectorType):
        return arith.ConstantOp(t, ir.DenseElementsAttr.get_splat(t, attr)).result
    return arith.ConstantOp(t, attr).result


def _f(like: Value, value: float) -> Value:
    """The f32 constant `value` in the type of `like`."""
    return _splat(like.type, ir.FloatAttr.get(ir.F32Type.get(), float(value)))


def _i(like: Value, value: int) -> Value:
    """The i32 constant `value` in the integer type of `like`'s shape."""
    t = _int_type(like.type)
    return _splat(t, ir.IntegerAttr.get(ir.IntegerType.get_signless(32), int(value)))


def _contract() -> ir.Attribute:
    """fastmath<contract>: LLVM may fuse a multiply and an add into one FMA (one rounding)."""
    return ir.Attribute.parse("#arith.fastmath<contract>")


def _add(a: Value, b: Value) -> Value:
    return arith.AddFOp(a, b, fastmath=_contract()).result


def _sub(a: Value, b: Value) -> Value:
    return arith.SubFOp(a, b, fastmath=_contract()).result


def _mul(a: Value, b: Value) -> Value:
    return arith.MulFOp(a, b, fastmath=_contract()).result


def _div(a: Value, b: Value) -> Value:
    return arith.DivFOp(a, b).result


def _cmp(predicate: arith.CmpFPredicate, a: Value, b: Value) -> Value:
    return arith.CmpFOp(predicate, a, b).result


def _select(condition: Value, a: Value, b: Value) -> Value:
    return arith.SelectOp(condition, a, b).result


def _to_bits(v: Value) -> Value:
    return arith.BitcastOp(_int_type(v.type), v).result


def _from_bits(bits: Value, like: Value) -> Value:
    return arith.BitcastOp(like.type, bits).result


def _abs(v: Value) -> Value:
    """|v| by clearing the sign bit (one and; NaN stays NaN)."""
    return _from_bits(arith.AndIOp(_to_bits(v), _i(v, 0x7FFFFFFF)).result, v)


def _polynomial(x: Value, coefficients: tuple[float, ...]) -> Value:
    """Horner's rule, highest degree first."""
    result = _f(x, coefficients[0])
    for c in coefficients[1:]:
        result = _add(_mul(result, x), _f(x, c))
    return result


def _clamp(v: Value, lo: float, hi: float) -> Value:
    """min(max(v, lo), hi); NaN stays NaN."""
    return arith.MinimumFOp(arith.MaximumFOp(v, _f(v, lo)).result, _f(v, hi)).result


# ----------------------------------------------------------------------------
# exp and expm1.


def _pow2(n: Value, like: Value) -> Value:
    """2^n for integer n in [-126, 127], from the exponent bits."""
    biased = arith.AddIOp(n, _i(n, 127)).result
    return _from_bits(arith.ShLIOp(biased, _i(n, 23)).result, like)


def _exp_reduced(x: Value) -> tuple[Value, Value, Value, Value]:
    """(expm1(r), 2^n1, 2^n2, n) with x = n ln 2 + r, n = n1 + n2, for x clamped to [EXP_LO, EXP_HI]."""
    x = _clamp(x, EXP_LO, EXP_HI)
    shifted = _add(_mul(x, _f(x, LOG2E)), _f(x, ROUND_MAGIC))  # round(x log2 e) + 1.5 * 2^23
    n_float = _sub(shifted, _f(x, ROUND_MAGIC))
    n = arith.SubIOp(_to_bits(shifted), _i(x, ROUND_MAGIC_BITS)).result  # bits, not fptosi: no poison on NaN
    r = _sub(_sub(x, _mul(n_float, _f(x, LN2_HI))), _mul(n_float, _f(x, LN2_LO)))
    expm1_r = _add(_mul(_mul(r, r), _polynomial(r, EXP_POLY)), r)
    half = arith.ShRSIOp(n, _i(x, 1)).result
    rest = arith.SubIOp(n, half).result
    return expm1_r, _pow2(half, x), _pow2(rest, x), n


def exp(x: Value) -> Value:
    """e^x: relative error within a few f32 ulps; inf above 88.72, 0 below -103.97, NaN for NaN."""
    expm1_r, scale_a, scale_b, _ = _exp_reduced(x)
    return _mul(_mul(_add(expm1_r, _f(x, 1.0)), scale_a), scale_b)


def expm1(x: Value) -> Value:
    """e^x - 1, accurate near 0 (relative error within a few ulps there too); +0 for -0."""
    expm1_r, scale_a, scale_b, n = _exp_reduced(x)
    one = _f(x, 1.0)
    scale = _mul(scale_a, scale_b)
    small = _add(_mul(scale, expm1_r), _sub(scale, one))  # 2^n - 1 exact while n <= 24
    large = _sub(_mul(_mul(_add(expm1_r, one), scale_a), scale_b), one)
    is_large = arith.CmpIOp(arith.CmpIPredicate.sgt, n, _i(x, EXPM1_EXP_FROM)).result
    return _select(is_large, large, small)


def _expm1_nonpositive(x: Value) -> Value:
    """expm1 for x <= 0 (or NaN): n <= 0, so the 2^n - 1 form alone is exact."""
    expm1_r, scale_a, scale_b, _ = _exp_reduced(x)
    scale = _mul(scale_a, scale_b)
    return _add(_mul(scale, expm1_r), _sub(scale, _f(x, 1.0)))


def tanh(x: Value) -> Value:
    """tanh(x) = sign(x) * -e / (e + 2) with e = expm1(-2|x|): odd, no cancellation near 0."""
    magnitude = _abs(x)
    e = _expm1_nonpositive(_mul(magnitude, _f(x, -2.0)))
    t = _abs(_div(arith.NegFOp(e).result, _add(e, _f(x, 2.0))))  # |.|: e may be -0 or +0 at 0
    sign = arith.AndIOp(_to_bits(x), _i(x, -0x80000000)).result  # the sign bit of x
    return _from_bits(arith.OrIOp(_to_bits(t), sign).result, x)


# ----------------------------------------------------------------------------
# log and log1p.


def log(x: Value) -> Value:
    """ln x: relative error within a few ulps; -inf at +-0, NaN below 0 and for NaN, inf at inf."""
    denormal = _cmp(arith.CmpFPredicate.OLT, _abs(x), _f(x, FLT_MIN))
    scaled = _select(denormal, _mul(x, _f(x, DENORMAL_SCALE)), x)
    bits = _to_bits(scaled)
    exponent = arith.SubIOp(arith.ShRSIOp(bits, _i(x, 23)).result, _i(x, 126)).result
    exponent = arith.SubIOp(exponent, _select(denormal, _i(x, 23), _i(x, 0))).result
    # m in [0.5, 1); below sqrt(1/2) it is doubled (exponent - 1), so f = m - 1 is in [-0.29, 0.41)
    m = _from_bits(arith.OrIOp(arith.AndIOp(bits, _i(x, MANTISSA_MASK)).result, _i(x, HALF_BITS)).result, x)
    low = _cmp(arith.CmpFPredicate.OLT, m, _f(x, math.sqrt(0.5)))
    f = _sub(_select(low, _add(m, m), m), _f(x, 1.0))
    e = arith.SIToFPOp(x.type, arith.SubIOp(exponent, _select(low, _i(x, 1), _i(x, 0))).result).result
    f2 = _mul(f, f)
    y = _mul(_mul(f2, f), _polynomial(f, LOG_POLY))
    y = _add(y, _mul(e, _f(x, LN2_LO)))
    y = _sub(y, _mul(f2, _f(x, 0.5)))
    result = _add(_add(f, y), _mul(e, _f(x, LN2_HI)))
    result = _select(_cmp(arith.CmpFPredicate.OEQ, x, _f(x, math.inf)), x, result)
    result = _select(_cmp(arith.CmpFPredicate.OEQ, x, _f(x, 0.0)), _f(x, -math.inf), result)
    return _select(_cmp(arith.CmpFPredicate.ULT, x, _f(x, 0.0)), _f(x, math.nan), result)


def log1p(x: Value) -> Value:
    """ln(1 + x), accurate near 0: log(u) * x / (u - 1) with u = 1 + x, x itself where u is 1."""
    one = _f(x, 1.0)
    u = _add(one, x)
    compensated = _mul(log(u), _div(x, _sub(u, one)))
    tiny_or_inf = arith.OrIOp(
        _cmp(arith.CmpFPredicate.OEQ, u, one), _cmp(arith.CmpFPredicate.OEQ, x, _f(x, math.inf))
    ).result
    return _select(tiny_or_inf, x, compensated)


MATH_EXPANSIONS: dict[str, Callable[[Value], Value]] = {
    "math.exp": exp,
    "math.expm1": expm1,
    "math.log": log,
    "math.log1p": log1p,
    "math.tanh": tanh,
}
"""The math ops these builders replace, by op name (backend/expand_math.py)."""
