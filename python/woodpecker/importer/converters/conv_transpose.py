"""ConvTranspose (2-D, and 1-D as 2-D with H = 1 through reshapes) -> wpk.conv_transpose2d.

The pads are made explicit here: `output_shape` (with auto_pad NOTSET) pads or crops at the end,
auto_pad SAME_UPPER / SAME_LOWER split the total padding as the ONNX reference does (the odd
one at the end for SAME_UPPER).
"""

from __future__ import annotations

from collections.abc import Sequence

from woodpecker.dialect import wpk
from woodpecker.importer import shapes
from woodpecker.importer.converters.registry import Result, converts
from woodpecker.importer.converters.spatial import as_2d, lift
from woodpecker.importer.node import NodeContext
from woodpecker.ops.conv_transpose import full_size


def _ints(ctx: NodeContext, name: str, default: int, spatial: int, positive: bool) -> list[int]:
    values = ctx.attr_ints(name, [default] * spatial)
    assert values is not None
    ctx.check(len(values) == spatial, f"attribute '{name}' = {values} should have {spatial} values")
    ctx.check(all(v > 0 if positive else v >= 0 for v in values), f"attribute '{name}' = {values} is out of range")
    return values


def _explicit_pads(
    ctx: NodeContext,
    in_hw: list[int],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
    output_padding: list[int],
) -> tuple[list[int], list[int]]:
    """(pads [top, left, bottom, right], output_padding) that give the requested output size."""
    spatial = len(in_hw)
    mode = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    if mode not in shapes.AUTO_PAD_MODES:
        raise ctx.unsupported(
            f"auto_pad '{mode}' is not supported (expected one of {', '.join(shapes.AUTO_PAD_MODES)})"
        )
    full = [full_size(in_hw[i], kernel[i], strides[i], dilations[i], output_padding[i]) for i in range(spatial)]
    requested = ctx.attr_ints("output_shape")
    if requested is not None:
        ctx.check(len(requested) == spatial, f"output_shape {requested} should have {spatial} values")
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        target = requested if requested is not None else [size * s for size, s in zip(in_hw, strides, strict=True)]
        begin, end = [], []
        for i in range(spatial):
            total = full[i] - target[i]
            ctx.check(total >= 0, f"output size {target[i]} is larger than the transposed convolution's {full[i]}")
            small, large = total // 2, total - total // 2
            begin.append(small if mode == "SAME_UPPER" else large)
            end.append(large if mode == "SAME_UPPER" else small)
        return begin + end, output_padding
    pads = _ints(ctx, "pads", 0, 2 * spatial, positive=False)
    if requested is None:
        return pads, output_padding
    extra = list(output_padding)
    for i in range(spatial):
        diff = requested[i] - (full[i] - pads[i] - pads[i + spatial])
        if diff >= 0:
            extra[i] += diff  # zeros (and the bias) at the end
        else:
            pads[i + spatial] -= diff  # cropped at the end
    return pads, extra


@converts("ConvTranspose")
def convert_conv_transpose(ctx: NodeContext) -> Sequence[Result]:
    x_shape = ctx.input_shape(0)
    spatial = len(x_shape) - 2
    if spatial not in (1, 2):
        raise ctx.unsupported(
            f"only 1-D and 2-D ConvTranspose are supported; input '{ctx.input_name(0)}' has shape {x_shape}"
        )
    w_shape = ctx.input_shape(1)
    ctx.check(len(w_shape) == spatial + 2, f"weight shape {w_shape} should be {spatial + 2}-D (C, M/group, k...)")
    kernel = ctx.attr_ints("kernel_shape")
    ctx.check(kernel is None or kernel == w_shape[2:], f"kernel_shape {kernel} does not match the weight {w_shape}")
    group = int(ctx.attr("group", 1))
    ctx.check(
        group >= 1 and x_shape[1] == w_shape[0] and x_shape[1] % group == 0,
        f"input channels {x_shape[1]}, weight {w_shape} and group {group} disagree",
    )
    strides = _ints(ctx, "strides", 1, spatial, positive=True)
    dilations = _ints(ctx, "dilations", 1, spatial, positive=True)
    output_padding = _ints(ctx, "output_padding", 0, spatial, positive=False)
    pads, output_padding = _explicit_pads(ctx, x_shape[2:], w_shape[2:], strides, dilations, output_padding)
    if spatial == 1:
        pads = [0, pads[0], 0, pads[1]]
    strides, dilations = lift(strides, spatial, 1), lift(dilations, spatial, 1)
    output_padding = lift(output_padding, spatial, 0)
    x, w = as_2d(ctx, 0), as_2d(ctx, 1)
    bias = None
    m = w_shape[1] * group
    if ctx.has_input(2):
        bias = ctx.tensor(2)
        ctx.check(ctx.shape_of(bias) == [m], f"bias shape {ctx.shape_of(bias)} != [{m}]")
    in_hw, k_hw = ctx.shape_of(x)[2:], ctx.shape_of(w)[2:]
    out_hw = [
        full_size(in_hw[i], k_hw[i], strides[i], dilations[i], output_padding[i]) - pads[i] - pads[i + 2]
        for i in range(2)
    ]
    ctx.check(all(size >= 1 for size in out_hw), f"the pads {pads} crop the whole output")
    shape4 = [x_shape[0], m, *out_hw]
    y = ctx.emit(wpk.ConvTranspose2DOp, shape4, x, w, strides, pads, output_padding, dilations, group, bias=bias)
    if spatial == 1:
        return [ctx.emit(wpk.ReshapeOp, ctx.output_shape(0, lambda: [shape4[0], m, out_hw[1]]), y)]
    ctx.output_shape(0, lambda: shape4)
    return [y]
