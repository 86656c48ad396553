"""Lowering of `wpk.conv_transpose2d`: a stride-1 convolution of the flipped filter over the input
spread out by the strides.

The input is inserted with strides `s` into a zero tensor padded by `d * (k - 1) - pad_begin`
before and `d * (k - 1) - pad_end + output_padding` after (negative amounts are taken as 0 and
cropped from the result instead); one `linalg.generic` over (n, g, m, oh, ow | c, kh, kw) then
correlates it with the spatially flipped filter (`_flip`: a flip inside the convolution's maps
would make them non-invertible for linalg). The output starts as the bias (or 0).
"""

from __future__ import annotations

import numpy as np
from mlir import ir
from mlir.dialects import arith, tensor

from woodpecker.dialect import attr_int, attr_ints, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    collapse,
    dense_constant,
    empty,
    expand,
    extract_slice,
    fill,
    generic,
)
from woodpecker.lowering.registry import lowers


def _spread(x: ir.Value, strides: list[int], low: list[int], size: list[int]) -> ir.Value:
    """x [N, C, H, W] at (low + i * stride) of a zero [N, C, size...] tensor."""
    n, c, h, w = shape_of(x)
    dest = fill(0.0, [n, c, *size])
    return tensor.InsertSliceOp(x, dest, [], [], [], [0, 0, *low], [n, c, h, w], [1, 1, *strides]).result


def _flip(w: ir.Value) -> ir.Value:
    """w[g, c, m, kH - 1 - kh, kW - 1 - kw], as the product of w (kernel axes collapsed) with the
    constant reversal permutation: a flip in an indexing map has a negative coefficient, which
    linalg's tiling does not take."""
    g, c, m, kh, kw = shape_of(w)
    taps = kh * kw
    reversal = np.eye(taps, dtype=np.float32)[::-1]
    flat = collapse(w, [[0], [1], [2], [3, 4]])
    dims = [ir.AffineDimExpr.get(i) for i in range(5)]  # (g, c, m, k | j)
    maps = [
        ir.AffineMap.get(5, 0, [dims[0], dims[1], dims[2], dims[4]]),
        ir.AffineMap.get(5, 0, [dims[4], dims[3]]),
        ir.AffineMap.get(5, 0, dims[:4]),
    ]

    def body(args: list[ir.Value]) -> ir.Value:
        return arith.AddFOp(args[2], arith.MulFOp(args[0], args[1]).result).result

    iterators = ["parallel"] * 4 + ["reduction"]
    flipped = generic([flat, dense_constant(reversal)], maps, fill(0.0, [g, c, m, taps]), body, iterators)
    return expand(flipped, [[0], [1], [2], [3, 4]], [g, c, m, kh, kw])


def _maps(d: list[int]) -> list[ir.AffineMap]:
    n, g, m, oh, ow, c, kh, kw = (ir.AffineDimExpr.get(i) for i in range(8))
    rows = oh + kh * ir.AffineConstantExpr.get(d[0])
    cols = ow + kw * ir.AffineConstantExpr.get(d[1])
    x_map = ir.AffineMap.get(8, 0, [n, g, c, rows, cols])
    w_map = ir.AffineMap.get(8, 0, [g, c, m, kh, kw])
    out_map = ir.AffineMap.get(8, 0, [n, g, m, oh, ow])
    return [x_map, w_map, out_map]


@lowers(wpk.ConvTranspose2DOp)
def lower_conv_transpose2d(op: ir.Operation) -> ir.Value:
    x, w = op.operands[0], op.operands[1]
    bias = op.operands[2] if len(op.operands) > 2 else None
    strides, pads = attr_ints(op, "strides"), attr_ints(op, "pads")
    output_padding, dilations = attr_ints(op, "output_padding"), attr_ints(op, "dilations")
    groups = attr_int(op, "groups")
    n, c, h, wd = shape_of(x)
    _, mg, kh, kw = shape_of(w)
    out = shape_of(op.results[0])
    if c % groups:
        raise LoweringError(f"groups={groups} does not divide the {c} input channels")
    low, high, crop = [], [], []
    for i in range(2):
        span = dilations[i] * ((kh, kw)[i] - 1)
        begin, end = span - pads[i], span - pads[i + 2] + output_padding[i]
        low.append(max(begin, 0))
        high.append(max(end, 0))
        crop.append(max(begin, 0) - begin)
    spread_size = [(size - 1) * s + 1 + lo + hi for size, s, lo, hi in zip((h, wd), strides, low, high, strict=True)]
    full = [spread_size[i] - dilations[i] * ((kh, kw)[i] - 1) for i in range(2)]
    if any(full[i] < crop[i] + out[2 + i] for i in range(2)):
        raise LoweringError(f"result shape {out} does not fit the transposed convolution ({full})")
    cg = c // groups
    spread = _spread(x, strides, low, spread_size)
    xg = expand(spread, [[0], [1, 2], [3], [4]], [n, groups, cg, *spread_size])
    wg = _flip(expand(w, [[0, 1], [2], [3], [4]], [groups, cg, mg, kh, kw]))
    init_shape = [n, groups, mg, *full]
    if bias is None:
        init = fill(0.0, init_shape)
    else:
        bg = expand(bias, [[0, 1]], [groups, mg])
        bias_map = ir.AffineMap.get(5, 0, [ir.AffineDimExpr.get(1), ir.AffineDimExpr.get(2)])
        identity = ir.AffineMap.get_identity(5)
        init = generic([bg], [bias_map, identity], empty(init_shape), lambda args: args[0])

    def body(args: list[ir.Value]) -> ir.Value:
        return arith.AddFOp(args[2], arith.MulFOp(args[0], args[1]).result).result

    iterators = ["parallel"] * 5 + ["reduction"] * 3
    result = generic([xg, wg], _maps(dilations), init, body, iterators)
    result = collapse(result, [[0], [1, 2], [3], [4]])
    return extract_slice(result, [0, 0, *crop], out)
