"""Converters of the normalization and reduction family: Softmax, LogSoftmax, Hardmax, the
Reduce* ops, GlobalMaxPool, LRN, LayerNormalization, InstanceNormalization, GroupNormalization.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir

from woodpecker.dialect import wpk
from woodpecker.importer import shapes
from woodpecker.importer.converters.core import _forward, _ints, _output_used_error
from woodpecker.importer.converters.registry import Converter, Result, converts
from woodpecker.importer.node import NodeContext

# ----------------------------------------------------------------------------
# Softmax, LogSoftmax, Hardmax: one axis.


def one_axis(op: wpk.OpClass) -> Converter:
    """From opset 13 along `axis` (default -1); before it the input is coerced to 2-D
    [prod(dims[:axis]), prod(dims[axis:])] (default axis 1) and the op runs along dim 1."""

    def convert(ctx: NodeContext) -> Sequence[Result]:
        x = ctx.tensor(0)
        x_shape = ctx.shape_of(x)
        rank = len(x_shape)
        ctx.check(rank >= 1, f"{ctx.op_type} needs an input of rank >= 1")
        shape = ctx.output_shape(0, lambda: x_shape)
        if ctx.opset >= 13:
            axis = ctx.compute(shapes.normalize_axis, int(ctx.attr("axis", -1)), rank)
            return [ctx.emit(op, shape, x, axis)]
        axis = int(ctx.attr("axis", 1))
        axis = axis + rank if axis < 0 else axis
        ctx.check(0 <= axis <= rank, f"axis {ctx.attr('axis', 1)} is out of range for rank {rank}")
        if axis == rank - 1:
            return [ctx.emit(op, shape, x, axis)]
        flat_shape = shapes.flatten_shape(x_shape, axis)
        flat = ctx.emit(wpk.ReshapeOp, flat_shape, x)
        result = ctx.emit(op, flat_shape, flat, 1)
        return [ctx.emit(wpk.ReshapeOp, shape, result)]

    return convert


converts("Softmax")(one_axis(wpk.SoftmaxOp))
converts("LogSoftmax")(one_axis(wpk.LogSoftmaxOp))
converts("Hardmax")(one_axis(wpk.HardmaxOp))

# ----------------------------------------------------------------------------
# Reduce*: axes as an attribute, or as input 1 from `axes_input_opset` on.

REDUCE_OPS: dict[str, wpk.OpClass] = {
    "ReduceMean": wpk.ReduceMeanOp,
    "ReduceSum": wpk.ReduceSumOp,
    "ReduceMax": wpk.ReduceMaxOp,
    "ReduceMin": wpk.ReduceMinOp,
    "ReduceProd": wpk.ReduceProdOp,
    "ReduceL1": wpk.ReduceL1Op,
    "ReduceL2": wpk.ReduceL2Op,
    "ReduceSumSquare": wpk.ReduceSumSquareOp,
    "ReduceLogSum": wpk.ReduceLogSumOp,
    "ReduceLogSumExp": wpk.ReduceLogSumExpOp,
}


def axes_input_opset(op_type: str) -> int:
    """The opset from which `op_type` takes its axes as input 1 (ReduceSum 13, the others 18)."""
    return 13 if op_type == "ReduceSum" else 18


def reduce_op(op: wpk.OpClass) -> Converter:
    def convert(ctx: NodeContext) -> Sequence[Result]:
        keepdims = bool(ctx.attr("keepdims", 1))
        if ctx.opset >= axes_input_opset(ctx.op_type):
            axes_array = ctx.optional_constant(1, "axes")
            axes = _ints(axes_array) if axes_array is not None else []
            noop = bool(ctx.attr("noop_with_empty_axes", 0))
        else:
            axes = ctx.attr_ints("axes") or []
            noop = False
        if not axes and noop:
            return [_forward(ctx)]
        x = ctx.tensor(0)
        x_shape = ctx.shape_of(x)
        axes = ctx.compute(shapes.normalize_axes, axes, len(x_shape)) if axes else list(range(len(x_shape)))
        shape = ctx.output_shape(0, lambda: shapes.reduce_shape(x_shape, axes, keepdims))
        return [ctx.emit(op, shape, x, axes, keepdims)]

    return convert


for _op_type, _op in REDUCE_OPS.items():
    converts(_op_type)(reduce_op(_op))


@converts("GlobalMaxPool")
def convert_global_max_pool(ctx: NodeContext) -> Sequence[Result]:
    x = ctx.tensor(0)
    x_shape = ctx.shape_of(x)
    ctx.check(len(x_shape) >= 3, f"GlobalMaxPool needs an N x C x spatial input, got shape {x_shape}")
    shape = ctx.output_shape(0, lambda: [*x_shape[:2], *([1] * (len(x_shape) - 2))])
    return [ctx.emit(wpk.GlobalMaxPoolOp, shape, x)]


# ----------------------------------------------------------------------------
# Normalizations.


def _stash_type(ctx: NodeContext) -> None:
    stash = int(ctx.attr("stash_type", 1))
    if stash != 1:
        raise ctx.unsupported(f"stash_type {stash} is not supported (statistics are computed in float32, stash_type 1)")


@converts("LayerNormalization")
def convert_layer_norm(ctx: NodeContext) -> Sequence[Result]:
    _output_used_error(ctx, 1, "Mean / InvStdDev, training outputs")
    _stash_type(ctx)
    x = ctx.tensor(0)
    x_shape = ctx.shape_of(x)
    rank = len(x_shape)
    ctx.check(rank >= 1, "LayerNormalization needs an input of rank >= 1")
    axis = ctx.compute(shapes.normalize_axis, int(ctx.attr("axis", -1)), rank)
    normalized = x_shape[axis:]
    scale = ctx.tensor(1)
    bias = ctx.tensor(2) if ctx.has_input(2) else None
    for name, value in (("Scale", scale), ("B", bias)):
        if value is None:
            continue
        s = ctx.shape_of(value)
        ok = len(s) <= len(normalized) and all(d in (1, n) for d, n in zip(s[::-1], normalized[::-1], strict=False))
        ctx.check(ok, f"{name} shape {s} does not broadcast to the normalized shape {normalized}")
    shape = ctx.output_shape(0, lambda: x_shape)
    epsilon = float(ctx.attr("epsilon", 1e-5))
    return [ctx.emit(wpk.LayerNormOp, shape, x, scale, axis, epsilon, bias=bias)]


def _per_channel(ctx: NodeContext, index: int, what: str, channels: int) -> ir.Value:
    value = ctx.tensor(index)
    s = ctx.shape_of(value)
    ctx.check(s == [channels], f"{what} shape {s} must be [{channels}] (one value per channel)")
    return value


@converts("InstanceNormalization")
def convert_instance_norm(ctx: NodeContext) -> Sequence[Result]:
    x = ctx.tensor(0)
    x_shape = ctx.shape_of(x)
    ctx.check(len(x_shape) >= 3, f"InstanceNormalization needs an N x C x spatial input, got shape {x_shape}")
    scale = _per_channel(ctx, 1, "scale", x_shape[1])
    bias = _per_channel(ctx, 2, "B", x_shape[1])
    shape = ctx.output_shape(0, lambda: x_shape)
    return [ctx.emit(wpk.InstanceNormOp, shape, x, scale, bias, float(ctx.attr("epsilon", 1e-5)))]


@converts("GroupNormalization")
def convert_group_norm(ctx: NodeContext) -> Sequence[Result]:
    _stash_type(ctx)
    x = ctx.tensor(0)
    x_shape = ctx.shape_of(x)
    ctx.check(len(x_shape) >= 3, f"GroupNormalization needs an N x C x spatial input, got shape {x_shape}")
    groups = ctx.attr("num_groups")
    if groups is None:
        raise ctx.unsupported("attribute 'num_groups' is required")
    groups, channels = int(groups), x_shape[1]
    ctx.check(groups >= 1 and channels % groups == 0, f"num_groups {groups} must divide the {channels} channels")
    # Opset 21's per-channel scale and bias; onnx's checker refuses the deprecated opset-18
    # GroupNormalization (per-group values) before a converter runs.
    scale, bias = _per_channel(ctx, 1, "scale", channels), _per_channel(ctx, 2, "bias", channels)
    shape = ctx.output_shape(0, lambda: x_shape)
    return [ctx.emit(wpk.GroupNormOp, shape, x, scale, bias, groups, float(ctx.attr("epsilon", 1e-5)))]


@converts("LRN")
def convert_lrn(ctx: NodeContext) -> Sequence[Result]:
    x = ctx.tensor(0)
    x_shape = ctx.shape_of(x)
    ctx.check(len(x_shape) >= 2, f"LRN needs an N x C x ... input, got shape {x_shape}")
    size = ctx.attr("size")
    if size is None:
        raise ctx.unsupported("attribute 'size' is required")
    ctx.check(int(size) >= 1, f"size {size} must be positive")
    alpha, beta, bias = (float(ctx.attr(n, d)) for n, d in (("alpha", 1e-4), ("beta", 0.75), ("bias", 1.0)))
    shape = ctx.output_shape(0, lambda: x_shape)
    return [ctx.emit(wpk.LrnOp, shape, x, alpha, beta, bias, int(size))]
