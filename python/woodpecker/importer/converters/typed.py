"""Converters of the integer, bool and indexing ops: Cast, Gather, Equal, Less, LessOrEqual,
Greater, GreaterOrEqual, Not, And, Or, Xor, IsNaN, IsInf, Where.

Each folds at import when all its inputs are constants (numpy, in the ops' semantics of
woodpecker/ops/typed.py) and otherwise builds the `wpk` op, whose tensors may be f32, i64, i32
or i1 (`NodeContext.typed_tensor`). Float64 and float16 data exists only as constants: a Cast
of such data folds, a Cast to them at run time is an error naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx

from woodpecker.dialect import wpk
from woodpecker.dialect.weights import materialize_typed
from woodpecker.importer import shapes
from woodpecker.importer.converters.registry import Result, converts
from woodpecker.importer.node import NodeContext
from woodpecker.ops.typed import COMPARE_PREDICATES, LOGICAL_KINDS, cast_array, gather_indices

BOOL = np.dtype(np.bool_)


def _all_constant(ctx: NodeContext, count: int) -> bool:
    return all(ctx.is_constant(i) for i in range(count))


def _fold_admitted(ctx: NodeContext, shape: Sequence[int], dtype: np.dtype) -> bool:
    """Whether a folded result of `shape` and `dtype` fits the fold budget. A float result over
    it is left to run time; any other is an error naming the node."""
    if ctx.values.fold_budget.admits(list(shape), dtype.itemsize):
        return True
    if dtype.kind == "f":
        return False
    limits = ctx.values.fold_budget.options
    raise ctx.shape_error(
        f"folding its constant inputs would make a {list(shape)} {dtype} array of "
        f"{math.prod(shape) * dtype.itemsize} bytes, over the fold budget "
        f"({limits.max_tensor_bytes} bytes per tensor, {limits.max_total_bytes} in all)"
    )


def _runtime_dtype(ctx: NodeContext, index: int) -> np.dtype:
    """The dtype input `index` has as a tensor (float constants become float32)."""
    dtype = np.dtype(ctx.input_dtype(index))
    if dtype.kind == "f":
        return np.dtype(np.float32)
    if dtype.kind in "iu" and dtype != np.int32:
        return np.dtype(np.int64)
    return dtype


# ----------------------------------------------------------------------------
# Cast.

_CAST_TARGETS = {
    onnx.TensorProto.FLOAT: np.dtype(np.float32),
    onnx.TensorProto.INT64: np.dtype(np.int64),
    onnx.TensorProto.INT32: np.dtype(np.int32),
    onnx.TensorProto.BOOL: BOOL,
}
_FOLD_ONLY_TARGETS = {
    onnx.TensorProto.DOUBLE: np.dtype(np.float64),
    onnx.TensorProto.FLOAT16: np.dtype(np.float16),
}


@converts("Cast")
def convert_cast(ctx: NodeContext) -> Sequence[Result]:
    to = int(ctx.attr("to", 0))
    to_name = onnx.TensorProto.DataType.Name(to) if to in onnx.TensorProto.DataType.values() else str(to)
    if to not in _CAST_TARGETS and to not in _FOLD_ONLY_TARGETS:
        raise ctx.unsupported(f"Cast to {to_name} is not supported (FLOAT, INT64, INT32, BOOL; DOUBLE, FLOAT16 folded)")
    dtype = _CAST_TARGETS.get(to) or _FOLD_ONLY_TARGETS[to]
    if ctx.is_constant(0):
        return [cast_array(ctx.constant(0, "input"), dtype)]
    if to in _FOLD_ONLY_TARGETS:
        raise ctx.unsupported(
            f"Cast to {to_name} of run-time data is not supported (tensors are float32, int64, int32 or bool "
            f"at run time; cast to FLOAT instead)"
        )
    x = ctx.typed_tensor(0)
    shape = ctx.output_shape(0, lambda: ctx.shape_of(x), dtype=dtype)
    if _runtime_dtype(ctx, 0) == dtype:
        return [x]
    return [ctx.emit_typed(wpk.CastOp, shape, dtype, x)]


# ----------------------------------------------------------------------------
# Gather.


@converts("Gather")
def convert_gather(ctx: NodeContext) -> Sequence[Result]:
    data_shape = ctx.input_shape(0)
    ctx.check(len(data_shape) >= 1, "data must have rank at least 1")
    axis = int(ctx.attr("axis", 0))
    ctx.check(-len(data_shape) <= axis < len(data_shape), f"axis {axis} is out of range for data {data_shape}")
    axis %= len(data_shape)
    size = data_shape[axis]
    indices_shape = ctx.input_shape(1)
    out_shape = data_shape[:axis] + indices_shape + data_shape[axis + 1 :]
    if ctx.input_dtype(1).kind not in "iu":
        raise ctx.unsupported(f"indices have dtype {ctx.input_dtype(1)}; Gather takes int64 or int32 indices")
    if ctx.is_constant(1):
        indices = np.asarray(ctx.constant(1, "indices"))
        bad = indices[(indices < -size) | (indices >= size)]
        ctx.check(
            bad.size == 0,
            f"index {int(bad.reshape(-1)[0]) if bad.size else 0} is out of range for axis {axis} of size {size}",
        )
        if ctx.is_constant(0):
            data = np.asarray(ctx.constant(0, "data"))
            if _fold_admitted(ctx, out_shape, data.dtype):
                return [np.take(data, gather_indices(indices, size), axis=axis)]
    data = ctx.typed_tensor(0)
    indices_value = ctx.typed_tensor(1)
    dtype = _runtime_dtype(ctx, 0)
    shape = ctx.output_shape(0, lambda: out_shape, dtype=dtype)
    return [ctx.emit_typed(wpk.GatherOp, shape, dtype, data, indices_value, axis)]


def _index_tuples(ctx: NodeContext, data_shape: list[int]) -> tuple[np.ndarray, int, np.ndarray]:
    """GatherND/ScatterND's constant index tuples (input 1, last dim k): checked against the
    first k dims of `data_shape` and turned into row indices of those dims flattened (negative
    indices counted from the end). Returns (indices, k, rows of shape indices.shape[:-1])."""
    indices = np.asarray(ctx.constant(1, "indices"))
    ctx.check(indices.dtype.kind in "iu", f"indices have dtype {indices.dtype}; {ctx.op_type} takes int64 indices")
    ctx.check(indices.ndim >= 1, "indices must have rank at least 1")
    k = int(indices.shape[-1])
    ctx.check(1 <= k <= len(data_shape), f"index tuples of length {k} do not fit data of rank {len(data_shape)}")
    lead = data_shape[:k]
    for axis, size in enumerate(lead):
        column = indices[..., axis]
        bad = column[(column < -size) | (column >= size)]
        ctx.check(
            bad.size == 0,
            f"index {int(bad.reshape(-1)[0]) if bad.size else 0} is out of range for axis {axis} of size {size}",
        )
    rows = np.ravel_multi_index(tuple(np.mod(indices[..., a], lead[a]) for a in range(k)), lead).astype(np.int64)
    return indices, k, rows


@converts("GatherND")
def convert_gather_nd(ctx: NodeContext) -> Sequence[Result]:
    """GatherND with constant indices (batch_dims 0): the first k dims of data are flattened
    and the index tuples become one constant row index each, so it is a reshape and a Gather
    along axis 0 (folded when data is constant too)."""
    ctx.check(int(ctx.attr("batch_dims", 0)) == 0, f"batch_dims {ctx.attr('batch_dims', 0)} is not supported (only 0)")
    data_shape = ctx.input_shape(0)
    indices, k, rows = _index_tuples(ctx, data_shape)
    lead = data_shape[:k]
    flat_shape = [math.prod(lead), *data_shape[k:]]
    out_shape = list(indices.shape[:-1]) + data_shape[k:]
    if ctx.is_constant(0):
        data = np.asarray(ctx.constant(0, "data"))
        if _fold_admitted(ctx, out_shape, data.dtype):
            return [np.take(data.reshape(flat_shape), rows, axis=0)]
    data = ctx.typed_tensor(0)
    dtype = _runtime_dtype(ctx, 0)
    flat = ctx.emit_typed(wpk.ReshapeOp, flat_shape, dtype, data)
    shape = ctx.output_shape(0, lambda: out_shape, dtype=dtype)
    return [ctx.emit_typed(wpk.GatherOp, shape, dtype, flat, materialize_typed(rows, ctx.loc), 0)]


@converts("ScatterND")
def convert_scatter_nd(ctx: NodeContext) -> Sequence[Result]:
    """ScatterND (reduction none) with constant indices: folded when data and updates are
    constant too; otherwise a Where between data and the updates gathered to the positions
    they overwrite (a constant bool mask and a constant row index per output element), which
    is what torch.roll and slice assignment export to (Swin-T's shifted windows)."""
    reduction = ctx.attr("reduction", "none") or "none"
    if reduction != "none":
        raise ctx.unsupported(f"reduction '{reduction}' is not supported (only 'none')")
    data_shape = ctx.input_shape(0)
    indices, k, rows = _index_tuples(ctx, data_shape)
    updates_shape = ctx.input_shape(2)
    expected = list(indices.shape[:-1]) + data_shape[k:]
    ctx.check(updates_shape == expected, f"updates have shape {updates_shape}, expected {expected}")
    lead = data_shape[:k]
    rows = rows.reshape(-1)
    if ctx.is_constant(0) and ctx.is_constant(2):
        data = np.array(ctx.constant(0, "data"))
        updates = np.asarray(ctx.constant(2, "updates"))
        if _fold_admitted(ctx, data_shape, data.dtype):
            flat = data.reshape([math.prod(lead), *data_shape[k:]])
            flat[rows] = updates.reshape([rows.size, *data_shape[k:]])
            return [flat.reshape(data_shape)]
    # source[r] = the update row written to data row r (the last one wins, like numpy), or -1.
    source = np.full(math.prod(lead), -1, np.int64)
    source[rows] = np.arange(rows.size)
    tail = data_shape[k:]
    mask = (source >= 0).reshape(lead + [1] * len(tail))  # Where broadcasts it over the rows
    dtype = _runtime_dtype(ctx, 0)
    ctx.check(_runtime_dtype(ctx, 2) == dtype, "data and updates must have the same dtype")
    data, updates = ctx.typed_tensor(0), ctx.typed_tensor(2)
    update_rows = ctx.emit_typed(wpk.ReshapeOp, [rows.size, *tail], dtype, updates)
    gathered = ctx.emit_typed(
        wpk.GatherOp, data_shape, dtype, update_rows, materialize_typed(np.maximum(source, 0).reshape(lead), ctx.loc), 0
    )
    shape = ctx.output_shape(0, lambda: data_shape, dtype=dtype)
    return [
        ctx.emit_typed(
            wpk.WhereOp, shape, dtype, materialize_typed(mask, ctx.loc), gathered, data
        )
    ]


# ----------------------------------------------------------------------------
# Comparisons, logic, classification, selection.


def _broadcast_binary(ctx: NodeContext, fold: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray | None:
    """The folded result of two constant inputs, when both are constant and it fits the budget."""
    if not _all_constant(ctx, 2):
        return None
    a, b = ctx.constant(0, "A"), ctx.constant(1, "B")
    out_shape = ctx.compute(shapes.broadcast, list(a.shape), list(b.shape))
    if not _fold_admitted(ctx, out_shape, BOOL):
        return None
    return np.asarray(fold(a, b))


def compare(predicate: str) -> Callable[[NodeContext], Sequence[Result]]:
    """Equal, Less, ... : a bool result of two f32, i64 or i32 operands (Equal also of bools)."""
    fold = COMPARE_PREDICATES[predicate]

    def convert(ctx: NodeContext) -> Sequence[Result]:
        folded = _broadcast_binary(ctx, fold)
        if folded is not None:
            return [folded]
        lhs, rhs = ctx.typed_tensor(0), ctx.typed_tensor(1)
        kinds = (_runtime_dtype(ctx, 0), _runtime_dtype(ctx, 1))
        ctx.check(kinds[0] == kinds[1], f"operands have dtypes {kinds[0]} and {kinds[1]}; they must be alike")
        shape = ctx.output_shape(0, lambda: shapes.broadcast(ctx.shape_of(lhs), ctx.shape_of(rhs)), dtype=BOOL)
        if kinds[0] == BOOL:
            if predicate != "eq":
                raise ctx.unsupported(f"{ctx.op_type} of bool tensors is not supported")
            differ = ctx.emit_typed(wpk.LogicalOp, shape, BOOL, lhs, rhs, "xor")
            return [ctx.emit_typed(wpk.NotOp, shape, BOOL, differ)]
        return [ctx.emit_typed(wpk.CompareOp, shape, BOOL, lhs, rhs, predicate)]

    convert.__name__ = f"convert_compare_{predicate}"
    return convert


def logical(kind: str) -> Callable[[NodeContext], Sequence[Result]]:
    """And, Or, Xor of bool tensors."""
    fold = LOGICAL_KINDS[kind]

    def convert(ctx: NodeContext) -> Sequence[Result]:
        folded = _broadcast_binary(ctx, fold)
        if folded is not None:
            return [folded]
        _require_bool(ctx, 0)
        _require_bool(ctx, 1)
        lhs, rhs = ctx.typed_tensor(0), ctx.typed_tensor(1)
        shape = ctx.output_shape(0, lambda: shapes.broadcast(ctx.shape_of(lhs), ctx.shape_of(rhs)), dtype=BOOL)
        return [ctx.emit_typed(wpk.LogicalOp, shape, BOOL, lhs, rhs, kind)]

    convert.__name__ = f"convert_logical_{kind}"
    return convert


def _require_bool(ctx: NodeContext, index: int) -> None:
    dtype = _runtime_dtype(ctx, index)
    if dtype != BOOL:
        raise ctx.unsupported(f"input '{ctx.input_name(index)}' has dtype {dtype}; {ctx.op_type} takes bool")


converts("Equal")(compare("eq"))
converts("Less")(compare("lt"))
converts("LessOrEqual")(compare("le"))
converts("Greater")(compare("gt"))
converts("GreaterOrEqual")(compare("ge"))
converts("And")(logical("and"))
converts("Or")(logical("or"))
converts("Xor")(logical("xor"))


@converts("Not")
def convert_not(ctx: NodeContext) -> Sequence[Result]:
    if ctx.is_constant(0):
        return [np.logical_not(ctx.constant(0, "X"))]
    _require_bool(ctx, 0)
    x = ctx.typed_tensor(0)
    shape = ctx.output_shape(0, lambda: ctx.shape_of(x), dtype=BOOL)
    return [ctx.emit_typed(wpk.NotOp, shape, BOOL, x)]


def _float_input(ctx: NodeContext) -> None:
    dtype = np.dtype(ctx.input_dtype(0))
    if dtype.kind != "f":
        raise ctx.unsupported(f"input '{ctx.input_name(0)}' has dtype {dtype}; {ctx.op_type} takes float data")


@converts("IsNaN")
def convert_is_nan(ctx: NodeContext) -> Sequence[Result]:
    _float_input(ctx)
    if ctx.is_constant(0):
        return [np.isnan(ctx.constant(0, "X"))]
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: ctx.shape_of(x), dtype=BOOL)
    return [ctx.emit_typed(wpk.IsNaNOp, shape, BOOL, x)]


@converts("IsInf")
def convert_is_inf(ctx: NodeContext) -> Sequence[Result]:
    _float_input(ctx)
    positive, negative = bool(ctx.attr("detect_positive", 1)), bool(ctx.attr("detect_negative", 1))
    if ctx.is_constant(0):
        x = ctx.constant(0, "X")
        return [((x == np.inf) & positive) | ((x == -np.inf) & negative)]
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: ctx.shape_of(x), dtype=BOOL)
    return [ctx.emit_typed(wpk.IsInfOp, shape, BOOL, x, positive, negative)]


@converts("Where")
def convert_where(ctx: NodeContext) -> Sequence[Result]:
    if _all_constant(ctx, 3):
        cond, x, y = (ctx.constant(i, what) for i, what in enumerate(("condition", "X", "Y")))
        out_shape = ctx.compute(
            shapes.broadcast, list(cond.shape), ctx.compute(shapes.broadcast, list(x.shape), list(y.shape))
        )
        if _fold_admitted(ctx, out_shape, np.result_type(x, y)):
            return [np.where(cond.astype(bool), x, y)]
    _require_bool(ctx, 0)
    kinds = (_runtime_dtype(ctx, 1), _runtime_dtype(ctx, 2))
    ctx.check(kinds[0] == kinds[1], f"X and Y have dtypes {kinds[0]} and {kinds[1]}; they must be alike")
    cond, x, y = ctx.typed_tensor(0), ctx.typed_tensor(1), ctx.typed_tensor(2)
    shape = ctx.output_shape(
        0,
        lambda: shapes.broadcast(ctx.shape_of(cond), shapes.broadcast(ctx.shape_of(x), ctx.shape_of(y))),
        dtype=kinds[0],
    )
    return [ctx.emit_typed(wpk.WhereOp, shape, kinds[0], cond, x, y)]
