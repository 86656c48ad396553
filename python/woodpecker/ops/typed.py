"""The integer, bool and indexing ops: cast, gather, compare, logical, not, is_nan, is_inf, where.

Unlike the other families these take and give i64, i32 and i1 tensors besides f32; each entry's
`elements` rule relates its operands' element types to its result's (the verifier checks it
beside the ODS constraints). Their numpy evaluation keeps integer and bool results exact.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import NotEvaluable, OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import axis_in_range, broadcast_shapes, fail, fmt

COMPARE_PREDICATES = {
    "eq": np.equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}
LOGICAL_KINDS = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}


def _broadcast(*shapes: Shape) -> Shape:
    out: Shape = []
    for shape in shapes:
        joined = broadcast_shapes(out, list(shape))
        if joined is None:
            fail(f"operand shapes {', '.join(fmt(s) for s in shapes)} do not broadcast")
        out = joined
    return out


def _same_shape(args: OpArgs[Shape]) -> Shape:
    return list(args["input"])


# ----------------------------------------------------------------------------
# Element-type rules.


def _any_elements(operands: Mapping[str, str], result: str) -> None:
    """Any of the allowed element types on either side (cast)."""


def _bool_result(operands: Mapping[str, str], result: str) -> None:
    if result != "i1":
        fail(f"the result must be an i1 tensor, but has element type {result}")


def _alike(operands: Mapping[str, str], names: tuple[str, ...]) -> None:
    kinds = {operands[n] for n in names if n in operands}
    if len(kinds) > 1:
        listed = ", ".join(f"'{n}' {operands[n]}" for n in names if n in operands)
        fail(f"operands must have one element type, but have {listed}")


def _compare_elements(operands: Mapping[str, str], result: str) -> None:
    _alike(operands, ("lhs", "rhs"))
    _bool_result(operands, result)


def _gather_elements(operands: Mapping[str, str], result: str) -> None:
    if "data" in operands and operands["data"] != result:
        fail(f"the result element type {result} differs from the data's {operands['data']}")


def _where_elements(operands: Mapping[str, str], result: str) -> None:
    _alike(operands, ("lhs", "rhs"))
    if "lhs" in operands and operands["lhs"] != result:
        fail(f"the result element type {result} differs from the branches' {operands['lhs']}")


# ----------------------------------------------------------------------------
# Cast.


def evaluate_cast(args: OpArgs[np.ndarray]) -> np.ndarray:
    """ONNX Cast to the result's element type (`args.result_dtype`)."""
    if args.result_dtype is None:
        raise NotEvaluable("the cast's result element type is needed and unknown")
    return cast_array(args["input"], np.dtype(args.result_dtype))


def cast_array(x: np.ndarray, to: np.dtype) -> np.ndarray:
    """`x` converted like ONNX Cast (and the lowering): to bool is x != 0; float to integer
    truncates toward zero (NaN and out-of-range values are undefined in ONNX; numpy's result)."""
    x = np.asarray(x)
    if to == np.bool_:
        return x != 0
    if to.kind in "iu" and x.dtype.kind == "f":
        with np.errstate(all="ignore"):
            return np.trunc(x).astype(to)
    return x.astype(to)


# ----------------------------------------------------------------------------
# Gather.


def gather_shape(args: OpArgs[Shape]) -> Shape:
    data, indices = list(args["data"]), list(args["indices"])
    if not data:
        fail("'data' must have rank at least 1")
    axis = axis_in_range(int(args.attr("axis")), len(data))
    return data[:axis] + indices + data[axis + 1 :]


def evaluate_gather(args: OpArgs[np.ndarray]) -> np.ndarray:
    """np.take along `axis`; negative indices count from the end, others are clamped into the axis."""
    data, axis = args["data"], int(args.attr("axis"))
    indices = gather_indices(args["indices"], data.shape[axis])
    return np.take(data, indices, axis=axis)


def gather_indices(indices: np.ndarray, size: int) -> np.ndarray:
    """Indices normalized like the lowering: negative ones + size, then clamped to [0, size)."""
    indices = np.asarray(indices).astype(np.int64)
    indices = np.where(indices < 0, indices + size, indices)
    return np.clip(indices, 0, size - 1)


# ----------------------------------------------------------------------------
# Comparison, logic, classification, selection.


def binary_shape(args: OpArgs[Shape]) -> Shape:
    return _broadcast(list(args["lhs"]), list(args["rhs"]))


def evaluate_compare(args: OpArgs[np.ndarray]) -> np.ndarray:
    predicate = args.attr("predicate")
    if predicate not in COMPARE_PREDICATES:
        raise NotEvaluable(f"predicate '{predicate}'")
    return COMPARE_PREDICATES[predicate](args["lhs"], args["rhs"])


def check_compare(args: OpArgs[Shape]) -> None:
    predicate = args.attr("predicate")
    if predicate not in COMPARE_PREDICATES:
        fail(f"attribute 'predicate' is '{predicate}', expected one of {', '.join(COMPARE_PREDICATES)}")
    _check_result(args, binary_shape(args))


def evaluate_logical(args: OpArgs[np.ndarray]) -> np.ndarray:
    kind = args.attr("kind")
    if kind not in LOGICAL_KINDS:
        raise NotEvaluable(f"logical kind '{kind}'")
    return LOGICAL_KINDS[kind](args["lhs"].astype(bool), args["rhs"].astype(bool))


def check_logical(args: OpArgs[Shape]) -> None:
    kind = args.attr("kind")
    if kind not in LOGICAL_KINDS:
        fail(f"attribute 'kind' is '{kind}', expected one of {', '.join(LOGICAL_KINDS)}")
    _check_result(args, binary_shape(args))


def _check_result(args: OpArgs[Shape], expected: Shape) -> None:
    got = list(args.result or ())
    if got != list(expected):
        fail(f"result shape {fmt(got)} does not match the expected shape {fmt(expected)}")


def evaluate_is_inf(args: OpArgs[np.ndarray]) -> np.ndarray:
    x = args["input"]
    positive = bool(args.attr("detect_positive")) & (x == np.inf)
    negative = bool(args.attr("detect_negative")) & (x == -np.inf)
    return np.logical_or(positive, negative)


def where_shape(args: OpArgs[Shape]) -> Shape:
    return _broadcast(list(args["condition"]), list(args["lhs"]), list(args["rhs"]))


def evaluate_where(args: OpArgs[np.ndarray]) -> np.ndarray:
    return np.where(args["condition"].astype(bool), args["lhs"], args["rhs"])


register(OpSemantics(wpk.CastOp, shape=_same_shape, evaluate=evaluate_cast, elements=_any_elements))
register(OpSemantics(wpk.GatherOp, shape=gather_shape, evaluate=evaluate_gather, elements=_gather_elements))
register(OpSemantics(wpk.CompareOp, check=check_compare, evaluate=evaluate_compare, elements=_compare_elements))
register(OpSemantics(wpk.LogicalOp, check=check_logical, evaluate=evaluate_logical, elements=_bool_result))
register(
    OpSemantics(wpk.NotOp, shape=_same_shape, evaluate=lambda a: np.logical_not(a["input"]), elements=_bool_result)
)
register(OpSemantics(wpk.IsNaNOp, shape=_same_shape, evaluate=lambda a: np.isnan(a["input"]), elements=_bool_result))
register(OpSemantics(wpk.IsInfOp, shape=_same_shape, evaluate=evaluate_is_inf, elements=_bool_result))
register(OpSemantics(wpk.WhereOp, shape=where_shape, evaluate=evaluate_where, elements=_where_elements))
