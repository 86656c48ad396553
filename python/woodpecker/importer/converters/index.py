"""Converters of the index ops: ArgMax, ArgMin, CumSum, Trilu, OneHot, Einsum, GatherElements at
run-time indices (`emit_take_along_axis`, called by movement.py's converter); and the integer
path of Add, Sub, Mul, Div, Mod, Neg, Abs, Max, Min (`integer_binary_or`,
`integer_unary_or`: the converters of those ops in core.py and elementwise.py hand an i64 or
i32 run-time input to `wpk.integer_binary`/`wpk.integer_unary`).

Each folds at import when its inputs are constants (numpy, in the ops' semantics of
woodpecker/ops/index.py). Einsum becomes transposes, reshapes and one `wpk.matmul` or
`wpk.matmul_transposed` (or a reduce_sum / transpose for one operand); OneHot becomes a
compare against the constant class indices and a where of the two constant values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from mlir import ir

from woodpecker.dialect import wpk
from woodpecker.dialect.weights import materialize_typed
from woodpecker.importer import shapes
from woodpecker.importer.converters.registry import Converter, Result, converts
from woodpecker.importer.converters.typed import _runtime_dtype
from woodpecker.importer.node import NodeContext
from woodpecker.importer.values import materialize
from woodpecker.ops.args import OpArgs
from woodpecker.ops.index import cumsum, evaluate_arg_reduce, trilu

I64 = np.dtype(np.int64)
BOOL = np.dtype(np.bool_)


def _constant_int(ctx: NodeContext, index: int, what: str) -> int:
    array = np.asarray(ctx.constant(index, what))
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise ctx.unsupported(f"{what} must be a constant scalar, got shape {list(array.shape)} {array.dtype}")
    value = array.reshape(-1)[0]
    ctx.check(float(value) == int(value), f"{what} {value} is not an integer")
    return int(value)


def _require_constant(ctx: NodeContext, index: int, what: str) -> None:
    if not ctx.is_constant(index):
        raise ctx.unsupported(f"{what} (input '{ctx.input_name(index)}') must be a constant, not a run-time tensor")


def _is_integer(ctx: NodeContext, index: int) -> bool:
    return np.dtype(ctx.input_dtype(index)).kind in "iu"


# ----------------------------------------------------------------------------
# Integer arithmetic at run time.


def integer_inputs(ctx: NodeContext, indices: Sequence[int]) -> bool:
    """Whether the node computes integers at run time: an input is an integer tensor or
    constant and not every input is a constant (those fold in the op's own converter)."""
    if all(ctx.is_constant(i) for i in indices):
        return False
    return any(_is_integer(ctx, i) for i in indices)


def _integer_dtype(ctx: NodeContext, indices: Sequence[int]) -> np.dtype:
    kinds = {_runtime_dtype(ctx, i) for i in indices}
    if len(kinds) > 1 or next(iter(kinds)).kind not in "iu":
        listed = ", ".join(f"'{ctx.input_name(i)}' {_runtime_dtype(ctx, i)}" for i in indices)
        raise ctx.unsupported(f"integer arithmetic needs inputs of one integer dtype (int64 or int32), got {listed}")
    return next(iter(kinds))


def emit_integer_binary(ctx: NodeContext, kind: str, indices: Sequence[int]) -> ir.Value:
    """A left-to-right chain of `wpk.integer_binary` `kind` over the inputs `indices`."""
    dtype = _integer_dtype(ctx, indices)
    operands = [ctx.typed_tensor(i) for i in indices]
    result, partial = operands[0], ctx.shape_of(operands[0])
    for operand in operands[1:]:
        partial = ctx.compute(shapes.broadcast, partial, ctx.shape_of(operand))
        result = ctx.emit_typed(wpk.IntegerBinaryOp, partial, dtype, result, operand, kind)
    shape = ctx.output_shape(0, lambda: partial, dtype=dtype)
    ctx.check(shape == partial, f"the broadcast of the inputs {partial} differs from the output shape {shape}")
    return result


def integer_binary_or(kind: str, convert: Converter) -> Converter:
    """`convert` (the f32 converter of a binary op), except that integer inputs at run time
    become `wpk.integer_binary` `kind`."""

    def wrapped(ctx: NodeContext) -> Sequence[Result]:
        if integer_inputs(ctx, (0, 1)):
            return [emit_integer_binary(ctx, kind, (0, 1))]
        return convert(ctx)

    wrapped.__name__ = convert.__name__
    wrapped.__doc__ = convert.__doc__
    return wrapped


def integer_unary_or(kind: str, convert: Converter) -> Converter:
    """`convert` (the f32 converter of a unary op), except that an integer input at run time
    becomes `wpk.integer_unary` `kind`."""

    def wrapped(ctx: NodeContext) -> Sequence[Result]:
        if integer_inputs(ctx, (0,)):
            dtype = _integer_dtype(ctx, (0,))
            x = ctx.typed_tensor(0)
            shape = ctx.output_shape(0, lambda: ctx.shape_of(x), dtype=dtype)
            return [ctx.emit_typed(wpk.IntegerUnaryOp, shape, dtype, x, kind)]
        return convert(ctx)

    wrapped.__name__ = convert.__name__
    wrapped.__doc__ = convert.__doc__
    return wrapped


# ----------------------------------------------------------------------------
# ArgMax, ArgMin.


def _number_input(ctx: NodeContext, index: int) -> np.dtype:
    dtype = _runtime_dtype(ctx, index)
    if dtype == BOOL:
        raise ctx.unsupported(f"input '{ctx.input_name(index)}' is bool; {ctx.op_type} takes numbers")
    return dtype


def arg_reduce(kind: str) -> Converter:
    def convert(ctx: NodeContext) -> Sequence[Result]:
        rank = len(ctx.input_shape(0))
        ctx.check(rank >= 1, "data must have rank at least 1")
        axis = ctx.compute(shapes.normalize_axis, int(ctx.attr("axis", 0)), rank)
        keepdims = bool(ctx.attr("keepdims", 1))
        last = bool(ctx.attr("select_last_index", 0))
        attrs = {"kind": kind, "axis": axis, "keepdims": keepdims, "select_last_index": last}
        if ctx.is_constant(0):
            return [evaluate_arg_reduce(OpArgs({"input": ctx.constant(0, "data")}, attrs))]
        _number_input(ctx, 0)
        x = ctx.typed_tensor(0)
        x_shape = ctx.shape_of(x)
        kept = [1 if i == axis else d for i, d in enumerate(x_shape)]
        out = kept if keepdims else x_shape[:axis] + x_shape[axis + 1 :]
        shape = ctx.output_shape(0, lambda: out, dtype=I64)
        return [ctx.emit_typed(wpk.ArgReduceOp, shape, I64, x, kind, axis, keepdims, last)]

    convert.__name__ = f"convert_arg{kind}"
    return convert


converts("ArgMax")(arg_reduce("max"))
converts("ArgMin")(arg_reduce("min"))


# ----------------------------------------------------------------------------
# GatherElements with run-time indices.


def emit_take_along_axis(ctx: NodeContext) -> ir.Value:
    """GatherElements whose indices are a run-time tensor (movement.py's converter handles
    constant ones): wpk.take_along_axis."""
    data_shape, indices_shape = ctx.input_shape(0), ctx.input_shape(1)
    rank = len(data_shape)
    ctx.check(len(indices_shape) == rank, f"indices of shape {indices_shape} should have rank {rank}")
    axis = ctx.compute(shapes.normalize_axis, int(ctx.attr("axis", 0)), rank)
    ctx.check(
        all(i <= d for a, (i, d) in enumerate(zip(indices_shape, data_shape, strict=True)) if a != axis),
        f"indices of shape {indices_shape} are larger than the input {data_shape} outside axis {axis}",
    )
    index_dtype = _runtime_dtype(ctx, 1)
    if index_dtype.kind not in "iu":
        raise ctx.unsupported(f"indices have dtype {index_dtype}; GatherElements takes int64 or int32 indices")
    dtype = _runtime_dtype(ctx, 0)
    data, indices = ctx.typed_tensor(0), ctx.typed_tensor(1)
    shape = ctx.output_shape(0, lambda: indices_shape, dtype=dtype)
    return ctx.emit_typed(wpk.TakeAlongAxisOp, shape, dtype, data, indices, axis)


# ----------------------------------------------------------------------------
# CumSum, Trilu.


@converts("CumSum")
def convert_cumsum(ctx: NodeContext) -> Sequence[Result]:
    _require_constant(ctx, 1, "axis")
    rank = len(ctx.input_shape(0))
    ctx.check(rank >= 1, "x must have rank at least 1")
    axis = ctx.compute(shapes.normalize_axis, _constant_int(ctx, 1, "axis"), rank)
    exclusive, reverse = bool(ctx.attr("exclusive", 0)), bool(ctx.attr("reverse", 0))
    if ctx.is_constant(0):
        return [cumsum(ctx.constant(0, "x"), axis, exclusive, reverse)]
    dtype = _number_input(ctx, 0)
    x = ctx.typed_tensor(0)
    shape = ctx.output_shape(0, lambda: ctx.shape_of(x), dtype=dtype)
    return [ctx.emit_typed(wpk.CumSumOp, shape, dtype, x, axis, exclusive, reverse)]


@converts("Trilu")
def convert_trilu(ctx: NodeContext) -> Sequence[Result]:
    k = 0
    if ctx.has_input(1):
        _require_constant(ctx, 1, "k")
        k = _constant_int(ctx, 1, "k")
    upper = bool(ctx.attr("upper", 1))
    ctx.check(len(ctx.input_shape(0)) >= 2, "input must have rank at least 2")
    if ctx.is_constant(0):
        return [trilu(ctx.constant(0, "input"), upper, k)]
    dtype = _runtime_dtype(ctx, 0)
    x = ctx.typed_tensor(0)
    shape = ctx.output_shape(0, lambda: ctx.shape_of(x), dtype=dtype)
    return [ctx.emit_typed(wpk.TriluOp, shape, dtype, x, upper, k)]


# ----------------------------------------------------------------------------
# OneHot.


@converts("OneHot")
def convert_one_hot(ctx: NodeContext) -> Sequence[Result]:
    """out = values[1] where index == class else values[0], the classes along `axis` (a
    negative index counts from the end of depth; one out of range matches no class)."""
    _require_constant(ctx, 1, "depth")
    _require_constant(ctx, 2, "values")
    depth = _constant_int(ctx, 1, "depth")
    ctx.check(depth >= 1, f"depth {depth} must be positive")
    values = np.asarray(ctx.constant(2, "values"))
    ctx.check(values.size == 2, f"values must hold 2 elements (off, on), got shape {list(values.shape)}")
    values = values.reshape(2)
    indices_shape = ctx.input_shape(0)
    rank = len(indices_shape) + 1
    axis = ctx.compute(shapes.normalize_axis, int(ctx.attr("axis", -1)), rank)
    out_shape = [*indices_shape[:axis], depth, *indices_shape[axis:]]
    classes = np.arange(depth, dtype=np.int64).reshape([depth] + [1] * (rank - 1 - axis))
    if ctx.is_constant(0):
        raw = np.asarray(ctx.constant(0, "indices"))
        index = np.trunc(raw).astype(np.int64) if raw.dtype.kind == "f" else raw.astype(np.int64)
        index = np.where(index < 0, index + depth, index)
        return [np.where(np.expand_dims(index, axis) == classes, values[1], values[0]).astype(values.dtype)]
    dtype = _runtime_dtype(ctx, 0)
    ctx.check(dtype != BOOL, "indices must be numbers, not bool")
    out_dtype = np.dtype(np.float32) if values.dtype.kind == "f" else _runtime_constant_dtype(values.dtype)
    indices = ctx.typed_tensor(0)
    if dtype != I64:
        indices = ctx.emit_typed(wpk.CastOp, indices_shape, I64, indices)
    expanded_shape = [*indices_shape[:axis], 1, *indices_shape[axis:]]
    expanded = ctx.emit_typed(wpk.ReshapeOp, expanded_shape, I64, indices)
    zero = materialize_typed(np.int64(0), ctx.loc)
    negative = ctx.emit_typed(wpk.CompareOp, expanded_shape, BOOL, expanded, zero, "lt")
    wrapped = ctx.emit_typed(
        wpk.IntegerBinaryOp, expanded_shape, I64, expanded, materialize_typed(np.int64(depth), ctx.loc), "add"
    )
    index = ctx.emit_typed(wpk.WhereOp, expanded_shape, I64, negative, wrapped, expanded)
    hit = ctx.emit_typed(wpk.CompareOp, out_shape, BOOL, index, materialize_typed(classes, ctx.loc), "eq")
    off, on = (_scalar_value(ctx, values[i], out_dtype) for i in (0, 1))
    shape = ctx.output_shape(0, lambda: out_shape, dtype=out_dtype)
    return [ctx.emit_typed(wpk.WhereOp, shape, out_dtype, hit, on, off)]


def _runtime_constant_dtype(dtype: np.dtype) -> np.dtype:
    if dtype == BOOL or dtype == np.int32:
        return np.dtype(dtype)
    return I64


def _scalar_value(ctx: NodeContext, value: np.generic, dtype: np.dtype) -> ir.Value:
    return materialize_typed(np.asarray(value).astype(dtype), ctx.loc) if dtype.kind != "f" else _f32(ctx, value)


def _f32(ctx: NodeContext, value: np.generic) -> ir.Value:
    return materialize(np.asarray(value, dtype=np.float32), f"{ctx.name}_value", ctx.values.weights, ctx.loc)


# ----------------------------------------------------------------------------
# Einsum.


def _parse_equation(ctx: NodeContext, count: int) -> tuple[list[str], str]:
    equation = str(ctx.attr("equation", "") or "")
    text = equation.replace(" ", "")
    if "..." in text:
        raise ctx.unsupported(f"equation '{equation}' uses an ellipsis (not supported)")
    if "->" not in text:
        raise ctx.unsupported(f"equation '{equation}' has no explicit output ('->'; implicit output is not supported)")
    inputs_text, output = text.split("->")
    terms = inputs_text.split(",")
    if len(terms) != count:
        raise ctx.unsupported(f"equation '{equation}' names {len(terms)} operands, the node has {count}")
    for term in [*terms, output]:
        if (not term.isalpha() or len(set(term)) != len(term)) and term:
            raise ctx.unsupported(
                f"equation '{equation}': term '{term}' repeats a letter or has other characters "
                "(diagonals are not supported)"
            )
    if set(output) - set("".join(terms)):
        raise ctx.unsupported(f"equation '{equation}': the output names letters no operand has")
    return terms, output


def _sizes(ctx: NodeContext, terms: Sequence[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for i, term in enumerate(terms):
        shape = ctx.input_shape(i)
        ctx.check(len(shape) == len(term), f"operand {i} has shape {shape}, its term '{term}' has {len(term)} letters")
        for letter, size in zip(term, shape, strict=True):
            ctx.check(
                sizes.setdefault(letter, size) == size,
                f"letter '{letter}' has sizes {sizes[letter]} and {size} (broadcasting is not supported)",
            )
    return sizes


class _Builder:
    """Emits the f32 transposes and reshapes of one Einsum, skipping identities."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx

    def transpose(self, value: ir.Value, term: str, order: str) -> ir.Value:
        if term == order:
            return value
        perm = [term.index(letter) for letter in order]
        shape = self.ctx.shape_of(value)
        return self.ctx.emit(wpk.TransposeOp, [shape[p] for p in perm], value, perm)

    def reshape(self, value: ir.Value, shape: list[int]) -> ir.Value:
        if self.ctx.shape_of(value) == shape:
            return value
        return self.ctx.emit(wpk.ReshapeOp, shape, value)


@converts("Einsum")
def convert_einsum(ctx: NodeContext) -> Sequence[Result]:
    """One or two operands without repeated letters: a sum over the letters only one operand
    has and the output lacks, then a batched matrix product (batch letters in both operands
    and the output, contracted ones in both operands only)."""
    count = len(ctx.node.input)
    if count not in (1, 2):
        raise ctx.unsupported(f"{count} operands (only 1 or 2 are supported)")
    terms, output = _parse_equation(ctx, count)
    sizes = _sizes(ctx, terms)
    if all(ctx.is_constant(i) for i in range(count)):
        arrays = [ctx.constant(i, f"input {i}") for i in range(count)]
        return [np.asarray(np.einsum(f"{','.join(terms)}->{output}", *arrays)).astype(arrays[0].dtype)]
    build = _Builder(ctx)
    operands = [ctx.tensor(i) for i in range(count)]
    # Letters of one operand that neither the other operand nor the output has are summed first.
    for i, term in enumerate(terms):
        others = set(output).union(*(terms[j] for j in range(count) if j != i))
        summed = [a for a, letter in enumerate(term) if letter not in others]
        if summed:
            kept = "".join(letter for letter in term if letter in others)
            operands[i] = ctx.emit(wpk.ReduceSumOp, [sizes[x] for x in kept], operands[i], summed, False)
            terms[i] = kept
    if count == 1:
        result = build.transpose(operands[0], terms[0], output)
    else:
        result = _contract(ctx, build, operands, terms, output, sizes)
    shape = ctx.output_shape(0, lambda: [sizes[x] for x in output])
    return [build.reshape(result, shape)]


def _contract(
    ctx: NodeContext, build: _Builder, operands: list[ir.Value], terms: list[str], output: str, sizes: dict[str, int]
) -> ir.Value:
    lhs_term, rhs_term = terms
    batch = "".join(x for x in output if x in lhs_term and x in rhs_term)
    left = "".join(x for x in output if x in lhs_term and x not in rhs_term)
    right = "".join(x for x in output if x in rhs_term and x not in lhs_term)
    contracted = "".join(x for x in lhs_term if x in rhs_term and x not in output)
    dims = [sizes[x] for x in batch]
    m, n, k = (math.prod(sizes[x] for x in group) for group in (left, right, contracted))
    lhs = build.reshape(build.transpose(operands[0], lhs_term, batch + left + contracted), [*dims, m, k])
    if rhs_term == batch + right + contracted and (right or contracted):
        # [..., N, K] as it is: K^T read by matmul_transposed, no transpose materialized.
        rhs = build.reshape(operands[1], [*dims, n, k])
        product = ctx.emit(wpk.MatMulTransposedOp, [*dims, m, n], lhs, rhs)
    else:
        rhs = build.reshape(build.transpose(operands[1], rhs_term, batch + contracted + right), [*dims, k, n])
        product = ctx.emit(wpk.MatMulOp, [*dims, m, n], lhs, rhs)
    natural = batch + left + right
    product = build.reshape(product, [sizes[x] for x in natural])
    return build.transpose(product, natural, output)
