"""1-D convolutions and pools as 2-D ones with H = 1: the attribute values and tensors lifted
to NCHW (a [N, C, L] tensor becomes [N, C, 1, L]), the 2-D result reshaped back."""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir

from woodpecker.dialect import wpk
from woodpecker.importer.node import NodeContext


def spatial_rank(ctx: NodeContext, input_shape: Sequence[int]) -> int:
    """1 or 2 (the spatial axes of input 0); anything else is one error naming the node."""
    spatial = len(input_shape) - 2
    if spatial not in (1, 2):
        raise ctx.unsupported(
            f"only 1-D and 2-D {ctx.op_type} (a 3-D NCL or 4-D NCHW input) is supported; input "
            f"'{ctx.input_name(0)}' has shape {list(input_shape)} ({spatial}-D)"
        )
    return spatial


def lift(values: Sequence[int], spatial: int, fill: int) -> list[int]:
    """Per-axis attribute values of a 1-D op as 2-D ones (the added H axis first, set to `fill`)."""
    return list(values) if spatial == 2 else [fill, *values]


def lift_pads(pads: Sequence[int] | None, spatial: int) -> list[int] | None:
    """ONNX pads [begins..., ends...] of a 1-D op as 2-D [top, left, bottom, right]."""
    if pads is None or spatial == 2:
        return None if pads is None else list(pads)
    if len(pads) != 2:
        return list(pads)  # the caller's length check reports it
    return [0, pads[0], 0, pads[1]]


def lifted_shape(shape: Sequence[int]) -> list[int]:
    """[N, C, L] -> [N, C, 1, L]; a 4-D shape stays."""
    return [*shape[:2], 1, shape[2]] if len(shape) == 3 else list(shape)


def as_2d(ctx: NodeContext, index: int) -> ir.Value:
    """Input `index` lifted to 4-D (a constant is reshaped before it is materialized)."""
    shape = lifted_shape(ctx.input_shape(index))
    if ctx.is_constant(index):
        array = ctx.constant(index, f"input {index}")
        if list(array.shape) != shape:
            name = f"{ctx.input_name(index)}__2d"
            ctx.values.set_constant(name, array.reshape(shape))
            return ctx.values.tensor(name, ctx.loc)
    value = ctx.tensor(index)
    return value if ctx.shape_of(value) == shape else ctx.emit(wpk.ReshapeOp, shape, value)


def lowered_result(ctx: NodeContext, value: ir.Value, spatial: int) -> ir.Value:
    """The 4-D result `value` as output 0 of a `spatial`-D op: reshaped back for 1-D."""
    shape = ctx.shape_of(value)
    if spatial == 2:
        ctx.output_shape(0, lambda: shape)
        return value
    return ctx.emit(wpk.ReshapeOp, ctx.output_shape(0, lambda: [shape[0], shape[1], shape[3]]), value)
