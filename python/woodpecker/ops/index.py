"""The index ops: arg_reduce (ArgMax/ArgMin), integer_binary and integer_unary (integer
arithmetic at run time), cumsum, take_along_axis (GatherElements at run-time indices), trilu.

arg_reduce gives i64 indices; integer_* take and give i64 or i32 (both operands alike) and keep
integer results exact (wrapping like the lowering's machine integers); cumsum and trilu keep
their input's element type. `elements` rules relate operand and result element types (the
verifier checks them beside the ODS constraints).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import NotEvaluable, OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import axis_in_range, broadcast_shapes, fail, fmt

ARG_KINDS = ("max", "min")
INTEGER_BINARY_KINDS = ("add", "sub", "mul", "div", "mod", "floor_mod", "max", "min")
INTEGER_UNARY_KINDS = ("neg", "abs")


def _same_elements(operands: Mapping[str, str], result: str) -> None:
    kinds = set(operands.values())
    if len(kinds) > 1:
        listed = ", ".join(f"'{n}' {t}" for n, t in operands.items())
        fail(f"operands must have one element type, but have {listed}")
    if kinds and result not in kinds:
        fail(f"the result element type {result} differs from the operands' {next(iter(kinds))}")


def _i64_result(operands: Mapping[str, str], result: str) -> None:
    if result != "i64":
        fail(f"the result must be an i64 tensor, but has element type {result}")


def _kind(args: OpArgs[Shape], allowed: tuple[str, ...]) -> str:
    kind = args.attr("kind")
    if kind not in allowed:
        fail(f"attribute 'kind' is '{kind}', expected one of {', '.join(allowed)}")
    return str(kind)


def _check_result(args: OpArgs[Shape], expected: Shape) -> None:
    got = list(args.result or ())
    if got != list(expected):
        fail(f"result shape {fmt(got)} does not match the expected shape {fmt(expected)}")


# ----------------------------------------------------------------------------
# arg_reduce.


def arg_reduce_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if not x:
        fail("'input' must have rank at least 1")
    axis = axis_in_range(int(args.attr("axis")), len(x))
    if args.attr("keepdims"):
        return [1 if i == axis else d for i, d in enumerate(x)]
    return [d for i, d in enumerate(x) if i != axis]


def check_arg_reduce(args: OpArgs[Shape]) -> None:
    _kind(args, ARG_KINDS)
    _check_result(args, arg_reduce_shape(args))


def evaluate_arg_reduce(args: OpArgs[np.ndarray]) -> np.ndarray:
    """np.argmax/argmin along `axis`; with select_last_index the last of equal extrema."""
    x, axis, kind = np.asarray(args["input"]), int(args.attr("axis")), args.attr("kind")
    if kind not in ARG_KINDS:
        raise NotEvaluable(f"arg_reduce kind '{kind}'")
    pick = np.argmax if kind == "max" else np.argmin
    if args.attr("select_last_index"):
        size = x.shape[axis]
        indices = size - 1 - pick(np.flip(x, axis=axis), axis=axis)
    else:
        indices = pick(x, axis=axis)
    if args.attr("keepdims"):
        indices = np.expand_dims(indices, axis)
    return np.asarray(indices, dtype=np.int64)


# ----------------------------------------------------------------------------
# Integer arithmetic.


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b truncated toward zero (C, LLVM sdiv); a zero divisor gives 0."""
    safe = np.where(b == 0, 1, b)
    quotient = np.abs(a) // np.abs(safe) * np.sign(a) * np.sign(safe)
    return np.where(b == 0, 0, quotient)


def _trunc_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - trunc(a / b) * b: the sign of a (C fmod, LLVM srem); a zero divisor gives 0."""
    return np.where(b == 0, 0, a - _trunc_div(a, b) * b)


def _floor_mod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The remainder with the sign of b (Python %); a zero divisor gives 0."""
    r = _trunc_mod(a, b)
    return np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


INTEGER_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": _trunc_div,
    "mod": _trunc_mod,
    "floor_mod": _floor_mod,
    "max": np.maximum,
    "min": np.minimum,
}
INTEGER_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {"neg": np.negative, "abs": np.abs}


def _integer_dtype(*arrays: np.ndarray) -> np.dtype:
    dtype = np.result_type(*arrays)
    if dtype.kind not in "iu":
        raise NotEvaluable(f"integer arithmetic of {dtype} data")
    return np.dtype(np.int32) if dtype == np.int32 else np.dtype(np.int64)


def integer_binary(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`kind` of integer arrays, wrapping in their dtype (int32 stays int32, others int64)."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = _integer_dtype(a, b)
    with np.errstate(all="ignore"):
        return np.asarray(INTEGER_BINARY[kind](a.astype(dtype), b.astype(dtype))).astype(dtype)


def integer_unary(kind: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    dtype = _integer_dtype(x)
    with np.errstate(all="ignore"):
        return np.asarray(INTEGER_UNARY[kind](x.astype(dtype))).astype(dtype)


def check_integer_binary(args: OpArgs[Shape]) -> None:
    _kind(args, INTEGER_BINARY_KINDS)
    lhs, rhs = list(args["lhs"]), list(args["rhs"])
    out = broadcast_shapes(lhs, rhs)
    if out is None:
        fail(f"operand shapes {fmt(lhs)} and {fmt(rhs)} are not broadcast-compatible")
    _check_result(args, out)


def evaluate_integer_binary(args: OpArgs[np.ndarray]) -> np.ndarray:
    kind = args.attr("kind")
    if kind not in INTEGER_BINARY:
        raise NotEvaluable(f"integer_binary kind '{kind}'")
    return integer_binary(kind, args["lhs"], args["rhs"])


def check_integer_unary(args: OpArgs[Shape]) -> None:
    _kind(args, INTEGER_UNARY_KINDS)
    _check_result(args, list(args["input"]))


def evaluate_integer_unary(args: OpArgs[np.ndarray]) -> np.ndarray:
    kind = args.attr("kind")
    if kind not in INTEGER_UNARY:
        raise NotEvaluable(f"integer_unary kind '{kind}'")
    return integer_unary(kind, args["input"])


# ----------------------------------------------------------------------------
# cumsum, trilu.


def cumsum_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if not x:
        fail("'input' must have rank at least 1")
    axis_in_range(int(args.attr("axis")), len(x))
    return x


def cumsum(x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    """ONNX CumSum: the running sum along `axis` (from its end with `reverse`), an element's
    own value left out with `exclusive`; integer data stays integer."""
    x = np.asarray(x)
    if reverse:
        x = np.flip(x, axis=axis)
    total = np.cumsum(x, axis=axis, dtype=x.dtype)
    if exclusive:
        total = total - x
    return np.flip(total, axis=axis) if reverse else total


def evaluate_cumsum(args: OpArgs[np.ndarray]) -> np.ndarray:
    return cumsum(args["input"], int(args.attr("axis")), bool(args.attr("exclusive")), bool(args.attr("reverse")))


def take_along_axis_shape(args: OpArgs[Shape]) -> Shape:
    data, indices = list(args["data"]), list(args["indices"])
    if len(indices) != len(data) or not data:
        fail(f"'indices' {fmt(indices)} must have the rank of 'data' {fmt(data)} (at least 1)")
    axis = axis_in_range(int(args.attr("axis")), len(data))
    if any(i > d for a, (i, d) in enumerate(zip(indices, data, strict=True)) if a != axis):
        fail(f"'indices' {fmt(indices)} is larger than 'data' {fmt(data)} outside axis {axis}")
    return indices


def evaluate_take_along_axis(args: OpArgs[np.ndarray]) -> np.ndarray:
    """np.take_along_axis of the leading block of data; indices normalized like Gather's."""
    data, axis = np.asarray(args["data"]), int(args.attr("axis"))
    raw = np.asarray(args["indices"])
    if raw.dtype.kind not in "iu":
        raise NotEvaluable(f"take_along_axis indices of {raw.dtype} data")
    size = data.shape[axis]
    indices = np.clip(np.where(raw < 0, raw + size, raw), 0, size - 1).astype(np.int64)
    block = tuple(slice(0, n) if a != axis else slice(None) for a, n in enumerate(indices.shape))
    return np.take_along_axis(data[block], indices, axis=axis)


def _take_elements(operands: Mapping[str, str], result: str) -> None:
    if "data" in operands and operands["data"] != result:
        fail(f"the result element type {result} differs from the data's {operands['data']}")


def trilu_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if len(x) < 2:
        fail(f"'input' must have rank at least 2, but has rank {len(x)}")
    return x


def trilu(x: np.ndarray, upper: bool, k: int) -> np.ndarray:
    """ONNX Trilu: [..., i, j] kept where j - i >= k (upper) or j - i <= k (lower), else 0."""
    x = np.asarray(x)
    rows, cols = x.shape[-2:]
    offset = np.arange(cols)[None, :] - np.arange(rows)[:, None]
    keep = offset >= k if upper else offset <= k
    return np.where(keep, x, np.zeros((), x.dtype))


def evaluate_trilu(args: OpArgs[np.ndarray]) -> np.ndarray:
    return trilu(args["input"], bool(args.attr("upper")), int(args.attr("k")))


register(OpSemantics(wpk.ArgReduceOp, check=check_arg_reduce, evaluate=evaluate_arg_reduce, elements=_i64_result))
register(
    OpSemantics(
        wpk.IntegerBinaryOp, check=check_integer_binary, evaluate=evaluate_integer_binary, elements=_same_elements
    )
)
register(
    OpSemantics(wpk.IntegerUnaryOp, check=check_integer_unary, evaluate=evaluate_integer_unary, elements=_same_elements)
)
register(OpSemantics(wpk.CumSumOp, shape=cumsum_shape, evaluate=evaluate_cumsum, elements=_same_elements))
register(
    OpSemantics(
        wpk.TakeAlongAxisOp, shape=take_along_axis_shape, evaluate=evaluate_take_along_axis, elements=_take_elements
    )
)
register(OpSemantics(wpk.TriluOp, shape=trilu_shape, evaluate=evaluate_trilu, elements=_same_elements))
