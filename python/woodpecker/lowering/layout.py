"""Lowering of the blocked layout ops (ops/layout.py): `wpk.to_blocked`, `wpk.from_blocked`,
`wpk.blocked_conv2d`.

The reorders are a zero tensor.pad of the channels, an expand_shape and a linalg.transpose
(and back: transpose, collapse_shape, extract_slice). `blocked_convolve` is the plain form of
`wpk.blocked_conv2d`: one `linalg.generic` over (n, ob, oh, ow, j | cb, kh, kw, i) on the
spatially padded input; lowering/blocked_conv.py lowers the op (to the form the cpu.blocked_conv
template schedules) and falls back to this one for the layouts it does not take.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir
from mlir.dialects import arith

from woodpecker.dialect import attr_int, attr_ints, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    collapse,
    expand,
    extract_slice,
    fill,
    generic,
    pad,
    transpose,
)
from woodpecker.lowering.registry import lowers
from woodpecker.ops.layout import blocks

# The tags of a blocked convolution's linalg.generic. NAMED_OP_ATTR: the op a linalg.generic
# stands for (schedule.kernels reads the kernel kind from it; it also marks generalized named ops).
NAMED_OP_ATTR = "wpk.named_op"
GROUPS_ATTR = "wpk.groups"
BLOCKED_CONV = "wpk.blocked_conv2d"


@lowers(wpk.ToBlockedOp)
def lower_to_blocked(op: ir.Operation) -> ir.Value:
    x = op.operands[0]
    shape = shape_of(x)
    block = attr_int(op, "block")
    if len(shape) < 2 or block < 1:
        raise LoweringError(f"to_blocked needs a rank >= 2 input and a positive block, got {shape}, {block}")
    n, c, *spatial = shape
    cb = blocks(c, block)
    rank = len(shape)
    padded = pad(x, [0] * rank, [0, cb * block - c] + [0] * (rank - 2), 0.0)
    groups = [[0], [1, 2]] + [[d + 1] for d in range(2, rank)]
    split = expand(padded, groups, [n, cb, block, *spatial])
    return transpose(split, [0, 1, *range(3, rank + 1), 2])


@lowers(wpk.FromBlockedOp)
def lower_from_blocked(op: ir.Operation) -> ir.Value:
    x = op.operands[0]
    shape = shape_of(x)
    channels = attr_int(op, "channels")
    if len(shape) < 3:
        raise LoweringError(f"from_blocked needs a blocked input of rank >= 3, got {shape}")
    n, _, *spatial, _ = shape
    rank = len(shape)
    lanes_second = transpose(x, [0, 1, rank - 1, *range(2, rank - 1)])
    groups = [[0], [1, 2]] + [[d] for d in range(3, rank)]
    flat = collapse(lanes_second, groups)
    return extract_slice(flat, [0] * (rank - 1), [n, channels, *spatial])


def _floordiv(expr: ir.AffineExpr, divisor: int) -> ir.AffineExpr:
    return ir.AffineFloorDivExpr.get(expr, ir.AffineConstantExpr.get(divisor))


def _input_map(
    strides: Sequence[int], dilations: Sequence[int], groups: int, filter_shape: Sequence[int], block_in: int
) -> ir.AffineMap:
    """The input's indexing map over (n, ob, oh, ow, j, cb, kh, kw, i)."""
    ob, cbg, _, _, bi, bo = filter_shape
    d = [ir.AffineDimExpr.get(k) for k in range(9)]
    oh = d[2] * strides[0] + d[6] * dilations[0]
    ow = d[3] * strides[1] + d[7] * dilations[1]
    per_group_out, per_group_in = ob * bo // groups, cbg * bi
    if groups == 1 and bi == block_in:
        block, lane = d[5], d[8]
    elif per_group_out == 1 and per_group_in == 1 and bo == block_in:
        block, lane = d[1], d[4]  # depthwise: output channel o reads input channel o
    else:
        within = d[5] * bi + d[8]
        if groups == 1:
            channel = within
        else:
            group = _floordiv(d[1] * bo + d[4], per_group_out)
            channel = group * per_group_in + within
        block, lane = _floordiv(channel, block_in), channel % block_in
    return ir.AffineMap.get(9, 0, [d[0], block, oh, ow, lane])


def blocked_convolve(x: ir.Value, w: ir.Value, op: ir.Operation) -> ir.Value:
    """The blocked convolution of `x` and `w` (no bias, no epilogue) as one linalg.generic."""
    strides, dilations = attr_ints(op, "strides"), attr_ints(op, "dilations")
    pads, groups = attr_ints(op, "pads"), attr_int(op, "groups")
    if len(shape_of(x)) != 5 or len(shape_of(w)) != 6:
        raise LoweringError(f"blocked_conv2d needs a 5-D input and 6-D filter, got {shape_of(x)}, {shape_of(w)}")
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        raise LoweringError("blocked_conv2d needs 2 strides, 2 dilations and 4 pads")
    out = shape_of(op.results[0])
    block_in = shape_of(x)[4]
    xp = pad(x, [0, 0, pads[0], pads[1], 0], [0, 0, pads[2], pads[3], 0], 0.0)
    d = [ir.AffineDimExpr.get(k) for k in range(9)]
    maps = [
        _input_map(strides, dilations, groups, shape_of(w), block_in),
        ir.AffineMap.get(9, 0, [d[1], d[5], d[6], d[7], d[8], d[4]]),
        ir.AffineMap.get(9, 0, d[:5]),
    ]

    def body(args: Sequence[ir.Value]) -> ir.Value:
        return arith.AddFOp(args[2], arith.MulFOp(args[0], args[1]).result).result

    kinds = ["parallel"] * 5 + ["reduction"] * 4
    conv = generic([xp, w], maps, fill(0.0, out), body, kinds)
    tag_blocked_conv(conv.owner, groups)
    return conv


def tag_blocked_conv(op: ir.Operation, groups: int) -> None:
    """Marks the linalg.generic of a blocked convolution: its kernel kind (`wpk.named_op`, read by
    schedule.kernels) and its `groups` (`wpk.groups`, read by libs.match)."""
    op.attributes[NAMED_OP_ATTR] = ir.StringAttr.get(BLOCKED_CONV)
    op.attributes[GROUPS_ATTR] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), groups)

