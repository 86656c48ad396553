"""Lowering of `wpk.conv2d` to named linalg convolutions.

groups == 1 -> linalg.conv_2d_nchw_fchw; groups == C_in == C_out ->
linalg.depthwise_conv_2d_nchw_chw; other groups -> linalg.conv_2d_ngchw_gfchw
on expanded (group-split) operands. Padding is a zero tensor.pad; the bias is
added by a separate elementwise linalg.generic.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir
from mlir.dialects import arith, linalg

from woodpecker.dialect import attr_int, attr_ints, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    collapse,
    empty,
    expand,
    fill,
    generic,
    identity_map,
    pad,
    projection_map,
)
from woodpecker.lowering.registry import lowers


def window_output_size(size: int, kernel: int, stride: int, dilation: int, pad_sum: int) -> int:
    """floor((size + pads - ((kernel - 1) * dilation + 1)) / stride) + 1."""
    return (size + pad_sum - ((kernel - 1) * dilation + 1)) // stride + 1


def _check_pair(name: str, values: Sequence[int], positive: bool = True) -> None:
    if len(values) != 2 or (positive and any(v < 1 for v in values)):
        raise LoweringError(f"'{name}' must hold 2 positive values, got {list(values)}")


def add_channel_bias(value: ir.Value, bias: ir.Value) -> ir.Value:
    """value[n, c, ...] + bias[c]."""
    shape = shape_of(value)
    if shape_of(bias) != [shape[1]]:
        raise LoweringError(f"bias shape {shape_of(bias)} is not [{shape[1]}]")
    rank = len(shape)
    maps = [identity_map(rank), projection_map(rank, [1]), identity_map(rank)]
    return generic([value, bias], maps, empty(shape), lambda args: arith.AddFOp(args[0], args[1]).result)


def convolve(x: ir.Value, w: ir.Value, op: ir.Operation) -> ir.Value:
    """The convolution of `x` and `w` without bias, with the attributes and result type of `op`.

    `op` is a wpk.conv2d or wpk.fused_conv2d (strides, pads, dilations, groups).
    """
    strides, dilations = attr_ints(op, "strides"), attr_ints(op, "dilations")
    pads, groups = attr_ints(op, "pads"), attr_int(op, "groups")
    _check_pair("strides", strides)
    _check_pair("dilations", dilations)
    if len(pads) != 4 or any(p < 0 for p in pads):
        raise LoweringError(f"'pads' must hold 4 non-negative values, got {pads}")
    if len(shape_of(x)) != 4 or len(shape_of(w)) != 4:
        raise LoweringError(f"conv2d needs 4-D input and filter, got {shape_of(x)} and {shape_of(w)}")
    n, c, h, wd = shape_of(x)
    f, cg, kh, kw = shape_of(w)
    if groups < 1 or c != cg * groups or f % groups != 0:
        raise LoweringError(f"groups={groups} does not fit input channels {c}, filter shape {shape_of(w)}")
    out = shape_of(op.results[0])
    oh = window_output_size(h, kh, strides[0], dilations[0], pads[0] + pads[2])
    ow = window_output_size(wd, kw, strides[1], dilations[1], pads[1] + pads[3])
    if out != [n, f, oh, ow]:
        raise LoweringError(f"conv2d result shape {out} is not the expected {[n, f, oh, ow]}")

    xp = pad(x, [0, 0, pads[0], pads[1]], [0, 0, pads[2], pads[3]], 0.0)
    attrs = {"strides": strides, "dilations": dilations}
    if groups == 1:
        return linalg.conv_2d_nchw_fchw(xp, w, outs=[fill(0.0, out)], **attrs)
    if groups == c and f == c:
        w3 = collapse(w, [[0, 1], [2], [3]])
        return linalg.depthwise_conv_2d_nchw_chw(xp, w3, outs=[fill(0.0, out)], **attrs)
    hp, wp = shape_of(xp)[2:]
    xg = expand(xp, [[0], [1, 2], [3], [4]], [n, groups, c // groups, hp, wp])
    wg = expand(w, [[0, 1], [2], [3], [4]], [groups, f // groups, cg, kh, kw])
    init = fill(0.0, [n, groups, f // groups, oh, ow])
    grouped = linalg.conv_2d_ngchw_gfchw(xg, wg, outs=[init], **attrs)
    return collapse(grouped, [[0], [1, 2], [3], [4]])


@lowers(wpk.Conv2DOp)
def lower_conv2d(op: ir.Operation) -> ir.Value:
    result = convolve(op.operands[0], op.operands[1], op)
    if len(op.operands) > 2:
        result = add_channel_bias(result, op.operands[2])
    return result
