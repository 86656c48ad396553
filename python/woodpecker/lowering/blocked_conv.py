"""The blocked (NCHW[x]c) convolution as linalg ops shaped for the `cpu.blocked_conv` template.

Layouts (b_i, b_o: the input and output channel blocks, fixed by the operand types):

    input   (N, C/b_i, H, W, b_i)
    filter  (O/b_o, (C/groups)/b_i, KH, KW, b_i, b_o)        regular and grouped
            (C/b, KH, KW, b) after collapsing its unit dims   depthwise (groups == C == O)
    output  (N, O/b_o, OH, OW, b_o)

The convolution is one `linalg.generic` (after a zero `linalg.fill`) whose innermost
parallel dim is the output-channel block, the vector dim of the template:

    regular    (n, oc, oh, ow, ob, ic, kh, kw, ib):  out[n, oc, oh, ow, ob] +=
               in[n, ic, oh*sh + kh*dh, ow*sw + kw*dw, ib] * w[oc, ic, kh, kw, ib, ob]
    grouped    the same with a group dim after n on expanded operands (n, g, oc, ...)
    depthwise  (n, cb, oh, ow, c, kh, kw):  out[n, cb, oh, ow, c] +=
               in[n, cb, oh*sh + kh*dh, ow*sw + kw*dw, c] * w[cb, kh, kw, c]

Its kernel gets the kind `blocked_conv` / `blocked_depthwise_conv` from these indexing maps
(schedule/blocked_kinds.py). The bias
(O/b_o, b_o) and the epilogue steps are ONE elementwise generic over the output (as for
`wpk.fused_conv2d`), which the template computes tile by tile with the convolution.
Padding is a zero `tensor.pad` of the spatial dims.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith, tensor

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
    tensor_of,
)
from woodpecker.lowering.conv import window_output_size
from woodpecker.lowering.fused import epilogue_generic, fused_operands
from woodpecker.lowering.layout import blocked_convolve as plain_blocked_convolve
from woodpecker.lowering.layout import tag_blocked_conv
from woodpecker.lowering.registry import lowers


@dataclass(frozen=True)
class BlockedGeometry:
    """The shapes and window of one blocked convolution (checked by `of`)."""

    n: int
    in_blocks: int  # C / b_i
    h: int
    w: int
    bi: int
    out_blocks: int  # O / b_o
    bo: int
    kh: int
    kw: int
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    groups: int
    depthwise: bool

    @property
    def out_hw(self) -> tuple[int, int]:
        return (
            window_output_size(self.h, self.kh, self.strides[0], self.dilations[0], self.pads[0] + self.pads[2]),
            window_output_size(self.w, self.kw, self.strides[1], self.dilations[1], self.pads[1] + self.pads[3]),
        )

    @property
    def output_shape(self) -> list[int]:
        return [self.n, self.out_blocks, *self.out_hw, self.bo]

    @classmethod
    def of(
        cls,
        x_shape: Sequence[int],
        w_shape: Sequence[int],
        strides: Sequence[int],
        pads: Sequence[int],
        dilations: Sequence[int],
        groups: int,
    ) -> BlockedGeometry:
        """The geometry, or a LoweringError naming what does not fit."""
        if len(strides) != 2 or len(dilations) != 2 or any(v < 1 for v in [*strides, *dilations]):
            raise LoweringError(f"strides {list(strides)} and dilations {list(dilations)} must be 2 positive values")
        if len(pads) != 4 or any(p < 0 for p in pads):
            raise LoweringError(f"'pads' must hold 4 non-negative values, got {list(pads)}")
        if len(x_shape) != 5:
            raise LoweringError(f"blocked conv input must be (N, C/b, H, W, b), got {list(x_shape)}")
        n, cb, h, w, bi = x_shape
        channels = cb * bi
        depthwise = groups > 1 and len(w_shape) in (4, 6) and _depthwise_filter(w_shape, groups, channels, bi)
        if depthwise:
            squeezed = [d for i, d in enumerate(w_shape) if not (len(w_shape) == 6 and i in (1, 4))]
            ob, kh, kw, bo = squeezed
            if ob != cb or bo != bi:
                raise LoweringError(f"depthwise filter {list(w_shape)} does not match input blocks {cb}x{bi}")
        else:
            if len(w_shape) != 6:
                raise LoweringError(f"blocked conv filter must be (O/bo, C/g/bi, KH, KW, bi, bo), got {list(w_shape)}")
            ob, icb, kh, kw, wbi, bo = w_shape
            if wbi != bi or groups < 1 or icb * groups != cb or ob % groups != 0:
                raise LoweringError(
                    f"filter {list(w_shape)} with groups={groups} does not fit input {list(x_shape)} "
                    "(each group needs whole input and output channel blocks)"
                )
        geometry = cls(
            n, cb, h, w, bi, ob, bo, kh, kw,
            (int(strides[0]), int(strides[1])),
            (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])),
            (int(dilations[0]), int(dilations[1])),
            int(groups), bool(depthwise),
        )  # fmt: skip
        if min(geometry.out_hw) < 1:
            raise LoweringError(f"the window does not fit the padded input {h}x{w} (output {geometry.out_hw})")
        return geometry


def _depthwise_filter(w_shape: Sequence[int], groups: int, channels: int, bi: int) -> bool:
    """Whether the filter is a depthwise one: groups == C and a channel per group (its
    per-group input-channel dims are 1)."""
    if groups != channels:
        return False
    return len(w_shape) == 4 or (w_shape[1] == 1 and w_shape[4] == 1)


def _d(i: int) -> ir.AffineExpr:
    return ir.AffineDimExpr.get(i)


def _window(out_dim: int, k_dim: int, stride: int, dilation: int) -> ir.AffineExpr:
    """out * stride + k * dilation."""
    return _d(out_dim) * stride + _d(k_dim) * dilation


def _conv_generic(
    inputs: list[ir.Value], maps: list[ir.AffineMap], init: ir.Value, kinds: list[str], groups: int
) -> ir.Value:
    """The generic, tagged as lowering/layout.py tags the plain form (`wpk.named_op`, `wpk.groups`):
    libs.match makes the regular form a oneDNN candidate (it declines the depthwise and grouped
    forms, whose maps are not the plain form's)."""
    conv = generic(inputs, maps, init, _multiply_add, kinds)
    tag_blocked_conv(conv.owner, groups)
    return conv


def _multiply_add(args: Sequence[ir.Value]) -> ir.Value:
    product = arith.MulFOp(args[0], args[1]).result
    return arith.AddFOp(args[2], product).result


def blocked_convolve(x: ir.Value, w: ir.Value, geometry: BlockedGeometry) -> ir.Value:
    """The blocked convolution of `x` by the packed filter `w`, without bias."""
    g = geometry
    sh, sw = g.strides
    dh, dw = g.dilations
    xp = pad(x, [0, 0, g.pads[0], g.pads[1], 0], [0, 0, g.pads[2], g.pads[3], 0], 0.0)
    if (g.kh, g.kw) == (1, 1) and (sh, sw) != (1, 1) and not g.depthwise:
        # A strided 1x1 convolution reads every s-th pixel: copy those into a dense tensor first
        # (a vectorized elementwise kernel), then the unit-stride kernel reads whole rows.
        xp, (sh, sw) = subsample(xp, (sh, sw), g.out_hw), (1, 1)
    par, red = "parallel", "reduction"
    if g.depthwise:
        w4 = w if len(shape_of(w)) == 4 else collapse(w, [[0, 1], [2], [3], [4, 5]])
        # (n, cb, oh, ow, c, kh, kw)
        maps = [
            ir.AffineMap.get(7, 0, [_d(0), _d(1), _window(2, 5, sh, dh), _window(3, 6, sw, dw), _d(4)]),
            ir.AffineMap.get(7, 0, [_d(1), _d(5), _d(6), _d(4)]),
            ir.AffineMap.get(7, 0, [_d(0), _d(1), _d(2), _d(3), _d(4)]),
        ]
        return _conv_generic([xp, w4], maps, fill(0.0, g.output_shape), [par] * 5 + [red] * 2, g.groups)
    if g.groups == 1:
        # (n, oc, oh, ow, ob, ic, kh, kw, ib)
        maps = [
            ir.AffineMap.get(9, 0, [_d(0), _d(5), _window(2, 6, sh, dh), _window(3, 7, sw, dw), _d(8)]),
            ir.AffineMap.get(9, 0, [_d(1), _d(5), _d(6), _d(7), _d(8), _d(4)]),
            ir.AffineMap.get(9, 0, [_d(0), _d(1), _d(2), _d(3), _d(4)]),
        ]
        return _conv_generic([xp, w], maps, fill(0.0, g.output_shape), [par] * 5 + [red] * 4, 1)
    # Grouped: (n, g, oc, oh, ow, ob, ic, kh, kw, ib) on operands with a group dim.
    groups = g.groups
    hp, wp = shape_of(xp)[2:4]
    xg = expand(xp, [[0], [1, 2], [3], [4], [5]], [g.n, groups, g.in_blocks // groups, hp, wp, g.bi])
    ws = shape_of(w)
    wg = expand(w, [[0, 1], [2], [3], [4], [5], [6]], [groups, ws[0] // groups, *ws[1:]])
    oh, ow = g.out_hw
    ginit = fill(0.0, [g.n, groups, g.out_blocks // groups, oh, ow, g.bo])
    maps = [
        ir.AffineMap.get(10, 0, [_d(0), _d(1), _d(6), _window(3, 7, sh, dh), _window(4, 8, sw, dw), _d(9)]),
        ir.AffineMap.get(10, 0, [_d(1), _d(2), _d(6), _d(7), _d(8), _d(9), _d(5)]),
        ir.AffineMap.get(10, 0, [_d(0), _d(1), _d(2), _d(3), _d(4), _d(5)]),
    ]
    grouped = _conv_generic([xg, wg], maps, ginit, [par] * 6 + [red] * 4, groups)
    return collapse(grouped, [[0], [1, 2], [3], [4], [5]])


def subsample(x: ir.Value, strides: tuple[int, int], out_hw: tuple[int, int]) -> ir.Value:
    """x[:, :, ::sh, ::sw, :] (the first out_hw pixels) as a dense tensor."""
    n, cb, _, _, b = shape_of(x)
    sizes = [n, cb, out_hw[0], out_hw[1], b]
    view = tensor.ExtractSliceOp(tensor_of(sizes), x, [], [], [], [0] * 5, sizes, [1, 1, strides[0], strides[1], 1])
    return generic([view.result], [identity_map(5), identity_map(5)], empty(sizes), lambda args: args[0])


def check_bias(bias: ir.Value, geometry: BlockedGeometry) -> None:
    if shape_of(bias) != [geometry.out_blocks, geometry.bo]:
        raise LoweringError(f"blocked bias shape {shape_of(bias)} is not [{geometry.out_blocks}, {geometry.bo}]")


def result_type(geometry: BlockedGeometry) -> ir.RankedTensorType:
    return tensor_of(geometry.output_shape)


@lowers(wpk.BlockedConv2DOp)
def lower_blocked_conv2d(op: ir.Operation) -> ir.Value:
    """The convolution in the form of `blocked_convolve` (the plain generic of lowering/layout.py
    for layouts that form does not take: an input block other than the filter's), then the
    epilogue of the fused convolution (bias (OB, bo), the steps, side operands broadcasting to
    the blocked result)."""
    fused = fused_operands(op)
    x, w, bias = fused.anchor["input"], fused.anchor["filter"], fused.anchor["bias"]
    assert x is not None and w is not None
    out = shape_of(op.results[0])
    try:
        geometry = BlockedGeometry.of(
            shape_of(x), shape_of(w), attr_ints(op, "strides"), attr_ints(op, "pads"),
            attr_ints(op, "dilations"), attr_int(op, "groups"),
        )  # fmt: skip
    except LoweringError:
        geometry = None
    if geometry is not None and geometry.output_shape == out:
        conv = blocked_convolve(x, w, geometry)
    else:
        conv = plain_blocked_convolve(x, w, op)
    if bias is None and not fused.steps:
        return conv
    leading = [(conv, identity_map(5))]
    if bias is not None:
        if shape_of(bias) != [out[1], out[4]]:
            raise LoweringError(f"bias shape {shape_of(bias)} is not [{out[1]}, {out[4]}]")
        leading.append((bias, projection_map(5, [1, 4])))

    def prologue(args: Sequence[ir.Value]) -> ir.Value:
        return arith.AddFOp(args[0], args[1]).result if len(args) > 1 else args[0]

    return epilogue_generic(leading, prologue, fused, out)
