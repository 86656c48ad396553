"""The core converters: constants, elementwise, conv, matmul/gemm, pooling, reshapes, pad.

A converter takes a `NodeContext` and returns one entry per node output: an
MLIR value, a numpy array (the output is a compile-time constant, e.g. a
Constant node or an op folded on constant inputs), or None (output not produced).
It builds `wpk` ops through their generated classes (woodpecker.dialect.wpk).
Each converter is registered for its ONNX op type(s) by `@converts("Conv")` (or
`converts("Relu")(unary(wpk.ReluOp))` for the generic ones) next to it;
`CONVERTERS` maps the ONNX op type to its converter, `SUPPORTED_OPS` lists them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from mlir import ir

from woodpecker.dialect import value_dtype, wpk
from woodpecker.importer import shapes
from woodpecker.importer.converters.index import integer_binary_or
from woodpecker.importer.converters.registry import Converter, Result, converts
from woodpecker.importer.converters.spatial import as_2d, lift, lift_pads, lowered_result, spatial_rank
from woodpecker.importer.node import NodeContext
from woodpecker.ops.registry import semantics_of
from woodpecker.ops.shape import PAD_MODES
from woodpecker.ops.steps import apply_step

# ----------------------------------------------------------------------------
# Helpers.


def _ints(array: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(array).reshape(-1)]


def _scalar(ctx: NodeContext, array: np.ndarray, what: str) -> float:
    flat = np.asarray(array).reshape(-1)
    if flat.size != 1:
        raise ctx.unsupported(f"{what} must be a scalar, got shape {list(np.shape(array))}")
    return float(flat[0])


def _auto_pad(ctx: NodeContext) -> str:
    mode = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    if mode not in shapes.AUTO_PAD_MODES:
        raise ctx.unsupported(
            f"auto_pad '{mode}' is not supported (expected one of {', '.join(shapes.AUTO_PAD_MODES)})"
        )
    return mode


def _pair(ctx: NodeContext, name: str, default: int | None, spatial: int = 2) -> list[int]:
    """A per-axis window attribute of a `spatial`-D op, as 2-D values (1-D: H = 1 first)."""
    values = ctx.attr_ints(name, None if default is None else [default] * spatial)
    if values is None:
        raise ctx.unsupported(f"attribute '{name}' is required")
    ctx.check(len(values) == spatial, f"attribute '{name}' = {values} should have {spatial} values ({spatial}-D op)")
    ctx.check(all(v > 0 for v in values), f"attribute '{name}' = {values} must be positive")
    return lift(values, spatial, 1)


def _require_2d_spatial(ctx: NodeContext, input_shape: Sequence[int]) -> None:
    if len(input_shape) != 4:
        spatial = len(input_shape) - 2
        raise ctx.unsupported(
            f"only 2-D {ctx.op_type} (a 4-D NCHW input) is supported; input '{ctx.input_name(0)}' "
            f"has shape {list(input_shape)} ({spatial}-D)"
        )


def _all_constant(ctx: NodeContext, indices: Sequence[int]) -> bool:
    return all(ctx.is_constant(i) for i in indices)


def _output_used_error(ctx: NodeContext, first_extra: int, what: str) -> None:
    for index in range(first_extra, len(ctx.node.output)):
        if ctx.output_used(index):
            raise ctx.unsupported(f"output {index} ({what}, '{ctx.node.output[index]}') is used")


# ----------------------------------------------------------------------------
# Constants and pass-through ops.


@converts("Constant")
def convert_constant(ctx: NodeContext) -> Sequence[Result]:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in ctx.attrs:
            value = ctx.attrs[key]
            if key.startswith("value_float"):
                return [np.asarray(value, dtype=np.float32)]
            if key.startswith("value_int"):
                return [np.asarray(value, dtype=np.int64)]
            return [np.asarray(value)]
    present = ", ".join(ctx.attrs) or "none"
    raise ctx.unsupported(f"only tensor/float/int values are supported (attributes: {present})")


def _forward(ctx: NodeContext) -> Result:
    """The input itself: a constant stays a constant, a tensor stays the same SSA value."""
    if ctx.is_constant(0):
        return ctx.values.constants[ctx.input_name(0)]
    return ctx.typed_tensor(0)  # of any element type


@converts("Identity")
def convert_identity(ctx: NodeContext) -> Sequence[Result]:
    return [_forward(ctx)]


@converts("Dropout")
def convert_dropout(ctx: NodeContext) -> Sequence[Result]:
    _output_used_error(ctx, 1, "the dropout mask")
    if ctx.opset >= 12 and ctx.has_input(2):
        training = ctx.constant(2, "training_mode")
        if bool(np.asarray(training).reshape(-1)[0]):
            raise ctx.unsupported("training_mode=True is not supported (inference only)")
    return [_forward(ctx)]


# ----------------------------------------------------------------------------
# Elementwise.


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    quotient = np.abs(a) // np.abs(b)
    return (np.sign(a) * np.sign(b) * quotient).astype(np.result_type(a, b))


def binary(op: wpk.OpClass, fold: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Converter:
    """A binary op with numpy broadcasting; on two constant inputs `fold` computes the result
    (in the inputs' dtype, so integer shape arithmetic stays integer) unless it would exceed
    the fold budget (then float data is computed at run time)."""

    def convert(ctx: NodeContext) -> Sequence[Result]:
        if _all_constant(ctx, (0, 1)):
            a, b = ctx.constant(0, "A"), ctx.constant(1, "B")
            if _fold_admitted(ctx, a, b):
                return [np.asarray(fold(a, b)).astype(a.dtype)]
        lhs, rhs = ctx.tensor(0), ctx.tensor(1)
        shape = ctx.output_shape(0, lambda: shapes.broadcast(ctx.shape_of(lhs), ctx.shape_of(rhs)))
        return [ctx.emit(op, shape, lhs, rhs)]

    convert.__name__ = f"convert_{op.OPERATION_NAME.removeprefix('wpk.')}"
    return convert


def _fold_admitted(ctx: NodeContext, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether the broadcast of constants `a` and `b` fits the fold budget (sized from the shape
    rule before anything is computed). A float result over it is left to run time; any other
    cannot be a tensor, so it is an error naming the node."""
    out_shape = ctx.compute(shapes.broadcast, list(a.shape), list(b.shape))
    if ctx.values.fold_budget.admits(out_shape, a.dtype.itemsize):
        return True
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return False
    limits = ctx.values.fold_budget.options
    raise ctx.shape_error(
        f"folding its constant {a.dtype} inputs would make a {out_shape} array of "
        f"{math.prod(out_shape) * a.dtype.itemsize} bytes, over the fold budget "
        f"({limits.max_tensor_bytes} bytes per tensor, {limits.max_total_bytes} in all)"
    )


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return _int_div(a, b)
    return np.divide(a, b)


def unary(op: wpk.OpClass, **float_attrs: float) -> Converter:
    """A unary op of the same shape; `float_attrs` are its f32 attributes, read from the ONNX
    attributes of the same names with these defaults. A constant integer input folds at import (shape arithmetic
    such as Neg of an axis stays integer)."""

    def convert(ctx: NodeContext) -> Sequence[Result]:
        attrs = {name: float(ctx.attr(name, default)) for name, default in float_attrs.items()}
        if ctx.is_constant(0) and ctx.constant(0, "X").dtype.kind in "iu":
            # Integer shape arithmetic (Neg of an axis) folds at import with the op's step
            # semantics; float weights are left to wpk-fold-constants (-O1 and up).
            a = ctx.constant(0, "X")
            step = semantics_of(op).op_step(attrs)
            if step is not None:
                with np.errstate(all="ignore"):
                    folded = np.rint(apply_step(step, a.astype(np.float64), None))
                return [np.asarray(folded).astype(a.dtype)]
        x = ctx.tensor(0)
        shape = ctx.output_shape(0, lambda: ctx.shape_of(x))
        return [ctx.emit(op, shape, x, **attrs)]

    convert.__name__ = f"convert_{op.OPERATION_NAME.removeprefix('wpk.')}"
    return convert


# Integer inputs at run time become wpk.integer_binary (importer/converters/index.py).
converts("Add")(integer_binary_or("add", binary(wpk.AddOp, np.add)))
converts("Sub")(integer_binary_or("sub", binary(wpk.SubOp, np.subtract)))
converts("Mul")(integer_binary_or("mul", binary(wpk.MulOp, np.multiply)))
converts("Div")(integer_binary_or("div", binary(wpk.DivOp, _divide)))
converts("Relu")(unary(wpk.ReluOp))
converts("Sigmoid")(unary(wpk.SigmoidOp))
converts("Tanh")(unary(wpk.TanhOp))
converts("LeakyRelu")(unary(wpk.LeakyReluOp, alpha=0.01))
converts("HardSigmoid")(unary(wpk.HardSigmoidOp, alpha=0.2, beta=0.5))
converts("HardSwish")(unary(wpk.HardSwishOp))


@converts("Clip")
def convert_clip(ctx: NodeContext) -> Sequence[Result]:
    low, high = -math.inf, math.inf
    if ctx.opset < 11:
        low = float(ctx.attr("min", low))
        high = float(ctx.attr("max", high))
    else:
        runtime = [i for i in (1, 2) if ctx.has_input(i) and not ctx.is_constant(i)]
        if runtime:
            return [_clip_runtime(ctx)]
        if ctx.has_input(1):
            low = _scalar(ctx, ctx.constant(1, "min"), "min")
        if ctx.has_input(2):
            high = _scalar(ctx, ctx.constant(2, "max"), "max")
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: ctx.shape_of(x))
    return [ctx.emit(wpk.ClipOp, shape, x, min=low, max=high)]


def _clip_runtime(ctx: NodeContext) -> ir.Value:
    """Clip with a bound computed at run time: min(max(x, lo), hi) as wpk.max / wpk.min steps
    (each bound a scalar tensor, broadcast)."""
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: ctx.shape_of(x))
    for index, op, what in ((1, wpk.MaxOp, "min"), (2, wpk.MinOp, "max")):
        if not ctx.has_input(index):
            continue
        bound = ctx.tensor(index)
        bound_shape = ctx.shape_of(bound)
        ctx.check(math.prod(bound_shape) == 1, f"{what} must be a scalar, got shape {bound_shape}")
        if bound_shape:
            bound = ctx.emit(wpk.ReshapeOp, [], bound)
        x = ctx.emit(op, shape, x, bound)
    return x


# ----------------------------------------------------------------------------
# Linear algebra.


@converts("MatMul")
def convert_matmul(ctx: NodeContext) -> Sequence[Result]:
    lhs, rhs = ctx.tensor(0), ctx.tensor(1)
    shape = ctx.output_shape(0, lambda: shapes.matmul_shape(ctx.shape_of(lhs), ctx.shape_of(rhs)))
    return [ctx.emit(wpk.MatMulOp, shape, lhs, rhs)]


@converts("Gemm")
def convert_gemm(ctx: NodeContext) -> Sequence[Result]:
    a, b = ctx.tensor(0), ctx.tensor(1)
    a_shape, b_shape = ctx.shape_of(a), ctx.shape_of(b)
    ctx.check(len(a_shape) == 2 and len(b_shape) == 2, f"A {a_shape} and B {b_shape} must be 2-D")
    trans_a, trans_b = bool(ctx.attr("transA", 0)), bool(ctx.attr("transB", 0))
    m, k = (a_shape[1], a_shape[0]) if trans_a else (a_shape[0], a_shape[1])
    k2, n = (b_shape[1], b_shape[0]) if trans_b else (b_shape[0], b_shape[1])
    ctx.check(
        k == k2, f"inner dimensions differ: A {a_shape} (transA={int(trans_a)}), B {b_shape} (transB={int(trans_b)})"
    )
    c = None
    if ctx.has_input(2):
        c = ctx.tensor(2)
        broadcast = ctx.compute(shapes.broadcast, ctx.shape_of(c), [m, n])
        ctx.check(broadcast == [m, n], f"C {ctx.shape_of(c)} does not broadcast to [{m}, {n}]")
    shape = ctx.output_shape(0, lambda: [m, n])
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    return [ctx.emit(wpk.GemmOp, shape, a, b, alpha, beta, trans_a, trans_b, c=c)]


@converts("Conv")
def convert_conv(ctx: NodeContext) -> Sequence[Result]:
    """2-D Conv, and 1-D as 2-D with H = 1 (converters/spatial.py)."""
    spatial = spatial_rank(ctx, ctx.input_shape(0))
    ctx.check(
        len(ctx.input_shape(1)) == spatial + 2,
        f"weight shape {ctx.input_shape(1)} should be {spatial + 2}-D (M, C/group, kernel...)",
    )
    x, w = as_2d(ctx, 0), as_2d(ctx, 1)
    x_shape, w_shape = ctx.shape_of(x), ctx.shape_of(w)
    kernel = ctx.attr_ints("kernel_shape")
    ctx.check(
        kernel is None or kernel == ctx.input_shape(1)[2:],
        f"kernel_shape {kernel} does not match the weight shape {ctx.input_shape(1)}",
    )
    strides = _pair(ctx, "strides", 1, spatial)
    dilations = _pair(ctx, "dilations", 1, spatial)
    group = int(ctx.attr("group", 1))
    ctx.check(group >= 1, f"group {group} must be positive")
    ctx.check(
        x_shape[1] == w_shape[1] * group and w_shape[0] % group == 0,
        f"input channels {x_shape[1]}, weight {ctx.input_shape(1)} and group {group} disagree",
    )
    pads = ctx.compute(
        shapes.explicit_pads,
        _auto_pad(ctx),
        lift_pads(ctx.attr_ints("pads"), spatial),
        x_shape[2:],
        w_shape[2:],
        strides,
        dilations,
    )
    bias = None
    if ctx.has_input(2):
        bias = ctx.tensor(2)
        ctx.check(ctx.shape_of(bias) == [w_shape[0]], f"bias shape {ctx.shape_of(bias)} != [{w_shape[0]}]")
    shape = ctx.compute(shapes.window_output_shape, x_shape, w_shape[0], w_shape[2:], strides, dilations, pads)
    y = ctx.emit(wpk.Conv2DOp, shape, x, w, strides, pads, dilations, group, bias=bias)
    return [lowered_result(ctx, y, spatial)]


@converts("BatchNormalization")
def convert_batch_norm(ctx: NodeContext) -> Sequence[Result]:
    if int(ctx.attr("training_mode", 0)) != 0:
        raise ctx.unsupported("training_mode=1 is not supported (inference only)")
    _output_used_error(ctx, 1, "a training statistic")
    x = ctx.tensor(0)
    x_shape = ctx.shape_of(x)
    ctx.check(len(x_shape) >= 2, f"input shape {x_shape} needs a channel dimension")
    params = [ctx.tensor(i) for i in range(1, 5)]
    for what, value in zip(("scale", "B", "input_mean", "input_var"), params, strict=True):
        ctx.check(
            ctx.shape_of(value) == [x_shape[1]],
            f"{what} has shape {ctx.shape_of(value)}, expected [{x_shape[1]}]",
        )
    shape = ctx.output_shape(0, lambda: x_shape)
    return [ctx.emit(wpk.BatchNormOp, shape, x, *params, float(ctx.attr("epsilon", 1e-5)))]


# ----------------------------------------------------------------------------
# Pooling.


def _pool(ctx: NodeContext, op: wpk.OpClass, **extra: bool) -> ir.Value:
    """2-D pooling, and 1-D as 2-D with H = 1 (converters/spatial.py)."""
    spatial = spatial_rank(ctx, ctx.input_shape(0))
    x = as_2d(ctx, 0)
    x_shape = ctx.shape_of(x)
    kernel = _pair(ctx, "kernel_shape", None, spatial)
    strides = _pair(ctx, "strides", 1, spatial)
    dilations = _pair(ctx, "dilations", 1, spatial)
    auto_pad = _auto_pad(ctx)
    pads = ctx.compute(
        shapes.explicit_pads,
        auto_pad,
        lift_pads(ctx.attr_ints("pads"), spatial),
        x_shape[2:],
        kernel,
        strides,
        dilations,
    )
    # With auto_pad the output size is fixed by the mode; the computed pads give it without ceil_mode.
    ceil_mode = bool(ctx.attr("ceil_mode", 0)) and auto_pad == "NOTSET"
    shape = ctx.compute(shapes.window_output_shape, x_shape, x_shape[1], kernel, strides, dilations, pads, ceil_mode)
    y = ctx.emit(op, shape, x, kernel, strides, pads, dilations, ceil_mode, **extra)
    return lowered_result(ctx, y, spatial)


@converts("MaxPool")
def convert_max_pool(ctx: NodeContext) -> Sequence[Result]:
    if int(ctx.attr("storage_order", 0)) != 0:
        raise ctx.unsupported("storage_order=1 (column major) is not supported")
    _output_used_error(ctx, 1, "Indices")
    return [_pool(ctx, wpk.MaxPoolOp)]


@converts("AveragePool")
def convert_average_pool(ctx: NodeContext) -> Sequence[Result]:
    include = bool(ctx.attr("count_include_pad", 0))
    return [_pool(ctx, wpk.AvgPoolOp, count_include_pad=include)]


@converts("GlobalAveragePool")
def convert_global_average_pool(ctx: NodeContext) -> Sequence[Result]:
    x = ctx.tensor(0)
    x_shape = ctx.shape_of(x)
    _require_2d_spatial(ctx, x_shape)
    shape = ctx.output_shape(0, lambda: [*x_shape[:2], 1, 1])
    return [ctx.emit(wpk.GlobalAvgPoolOp, shape, x)]


# ----------------------------------------------------------------------------
# Shape manipulation.


def _data_shape(ctx: NodeContext) -> list[int]:
    return ctx.input_shape(0)


def _reshaped(ctx: NodeContext, compute: Callable[[], Sequence[int]] | None) -> Result:
    """Reshape input 0 to the output shape (folded when input 0 is a constant)."""
    if ctx.is_constant(0) and compute is not None:
        target = ctx.compute(compute)
        return ctx.values.constants[ctx.input_name(0)].reshape(target)
    x = ctx.typed_tensor(0)  # any element type: reshapes also move int64/int32/bool data
    dtype = value_dtype(x)
    shape = ctx.output_shape(0, compute, dtype=dtype)
    return ctx.emit_typed(wpk.ReshapeOp, shape, dtype, x)


@converts("Reshape")
def convert_reshape(ctx: NodeContext) -> Sequence[Result]:
    allowzero = ctx.opset >= 14 and bool(ctx.attr("allowzero", 0))
    compute = None
    if ctx.is_constant(1):
        target = _ints(ctx.constant(1, "shape"))
        if allowzero and 0 in target:
            raise ctx.shape_error(f"shape {target} with allowzero=1 makes an empty tensor")
        compute = lambda: shapes.reshape_target(_data_shape(ctx), target, allowzero)  # noqa: E731
    return [_reshaped(ctx, compute)]


@converts("Flatten")
def convert_flatten(ctx: NodeContext) -> Sequence[Result]:
    in_shape = _data_shape(ctx)
    rank = len(in_shape)
    axis = int(ctx.attr("axis", 1))
    axis = axis + rank if axis < 0 else axis
    ctx.check(0 <= axis <= rank, f"axis {ctx.attr('axis', 1)} is out of range for rank {rank}")
    if ctx.is_constant(0):
        return [ctx.values.constants[ctx.input_name(0)].reshape(shapes.flatten_shape(in_shape, axis))]
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: shapes.flatten_shape(in_shape, axis))
    return [ctx.emit(wpk.FlattenOp, shape, x, axis)]


def _axes(ctx: NodeContext, required: bool) -> list[int] | None:
    """Squeeze/Unsqueeze axes: an attribute before opset 13, an input since."""
    if ctx.opset >= 13:
        array = ctx.optional_constant(1, "axes")
        axes = _ints(array) if array is not None else None
    else:
        axes = ctx.attr_ints("axes")
    if axes is None and required:
        raise ctx.unsupported("axes are required")
    return axes


@converts("Squeeze")
def convert_squeeze(ctx: NodeContext) -> Sequence[Result]:
    axes = _axes(ctx, required=False)
    return [_reshaped(ctx, lambda: shapes.squeeze_shape(_data_shape(ctx), axes))]


@converts("Unsqueeze")
def convert_unsqueeze(ctx: NodeContext) -> Sequence[Result]:
    axes = _axes(ctx, required=True)
    assert axes is not None
    return [_reshaped(ctx, lambda: shapes.unsqueeze_shape(_data_shape(ctx), axes))]


@converts("Transpose")
def convert_transpose(ctx: NodeContext) -> Sequence[Result]:
    in_shape = _data_shape(ctx)
    rank = len(in_shape)
    perm = ctx.attr_ints("perm") or list(reversed(range(rank)))
    ctx.check(sorted(perm) == list(range(rank)), f"perm {perm} is not a permutation of {rank} dims")
    if ctx.is_constant(0):
        return [np.transpose(ctx.values.constants[ctx.input_name(0)], perm)]
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: [in_shape[p] for p in perm])
    return [ctx.emit(wpk.TransposeOp, shape, x, perm)]


@converts("Concat")
def convert_concat(ctx: NodeContext) -> Sequence[Result]:
    indices = [i for i in range(len(ctx.node.input)) if ctx.has_input(i)]
    ctx.check(bool(indices), "Concat needs at least one input")
    if "axis" not in ctx.attrs:
        raise ctx.unsupported("attribute 'axis' is required")
    in_shapes = [ctx.input_shape(i) for i in indices]
    axis = ctx.compute(shapes.normalize_axis, int(ctx.attr("axis")), len(in_shapes[0]))
    if _all_constant(ctx, indices):
        arrays = [ctx.values.constants[ctx.input_name(i)] for i in indices]
        return [np.concatenate(arrays, axis=axis)]
    operands = [ctx.tensor(i) for i in indices]
    shape = ctx.output_shape(0, lambda: shapes.concat_shape(in_shapes, axis))
    if len(operands) == 1:
        return [operands[0]]
    # wpk.concat is binary (IRDL variadics would force equal input types): a left-to-right chain.
    result, partial = operands[0], in_shapes[0]
    for operand, operand_shape in zip(operands[1:-1], in_shapes[1:-1], strict=True):
        partial = shapes.concat_shape([partial, operand_shape], axis)
        result = ctx.emit(wpk.ConcatOp, partial, result, operand, axis)
    return [ctx.emit(wpk.ConcatOp, shape, result, operands[-1], axis)]


@converts("Pad")
def convert_pad(ctx: NodeContext) -> Sequence[Result]:
    mode = ctx.attr("mode", "constant") or "constant"
    if mode not in PAD_MODES:
        raise ctx.unsupported(f"mode '{mode}' is not supported (expected one of {', '.join(PAD_MODES)})")
    x = ctx.tensor(0)
    x_shape = ctx.shape_of(x)
    rank = len(x_shape)
    if ctx.opset < 11:
        pads = ctx.attr_ints("pads") or []
        value = float(ctx.attr("value", 0.0))
        axes = None
    else:
        pads = _ints(ctx.constant(1, "pads"))
        value_array = ctx.optional_constant(2, "constant_value")
        value = 0.0 if value_array is None or value_array.size == 0 else _scalar(ctx, value_array, "constant_value")
        axes_array = ctx.optional_constant(3, "axes") if ctx.opset >= 18 else None
        axes = _ints(axes_array) if axes_array is not None else None
    if axes is not None:
        normalized = [ctx.compute(shapes.normalize_axis, a, rank) for a in axes]
        ctx.check(len(set(normalized)) == len(normalized), f"axes {axes} repeat a dimension")
        ctx.check(len(pads) == 2 * len(axes), f"pads {pads} should have {2 * len(axes)} values for axes {axes}")
        full = [0] * (2 * rank)
        for i, axis in enumerate(normalized):
            full[axis] = pads[i]
            full[axis + rank] = pads[i + len(axes)]
        pads = full
    ctx.check(len(pads) == 2 * rank, f"pads {pads} should have {2 * rank} values for rank {rank}")
    if mode == "reflect":
        # Reflection repeats no edge, so each side pads less than the axis (as onnxruntime requires).
        for axis, size in enumerate(x_shape):
            too_big = [p for p in (pads[axis], pads[axis + rank]) if p >= size]
            ctx.check(
                not too_big,
                f"mode 'reflect' pads axis {axis} (size {size}) by {max(too_big, default=0)} on a side; reflect "
                f"pads must be smaller than the axis size (pads {pads})",
            )
    shape = ctx.output_shape(0, lambda: shapes.pad_shape(x_shape, pads))
    return [ctx.emit(wpk.PadOp, shape, x, pads, mode, value)]
