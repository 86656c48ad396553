"""2-D convolution (NCHW input, FCHW filter, optional per-channel bias; ONNX Conv)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import expect_len, expect_rank, fail, fmt, non_negative, positive


def checked_conv_args(args: OpArgs[Shape]) -> tuple[list[int], list[int], Shape | None, list, list, list, int]:
    """The operands and window attributes shared by the 2-D convolutions (conv2d, fused_conv2d,
    conv_transpose2d), checked: (input, filter, bias, strides, pads, dilations, groups)."""
    x, w, bias = list(args["input"]), list(args["filter"]), args.get("bias")
    expect_rank("input", x, 4)
    expect_rank("filter", w, 4)
    strides = expect_len("strides", args.attr("strides"), 2)
    pads = expect_len("pads", args.attr("pads"), 4)
    dilations = expect_len("dilations", args.attr("dilations"), 2)
    groups = args.attr("groups")
    positive("strides", strides)
    positive("dilations", dilations)
    non_negative("pads", pads)
    if groups < 1:
        fail(f"attribute 'groups' must be positive, got {groups}")
    return x, w, bias, strides, pads, dilations, groups


def conv2d_shape(args: OpArgs[Shape]) -> Shape:
    """The result shape (also of wpk.fused_conv2d's convolution); `pads` are [top, left, bottom, right]."""
    x, w, bias, strides, pads, dilations, groups = checked_conv_args(args)
    n, c, h, wd = x
    f, cg, kh, kw = w
    if c != cg * groups:
        fail(f"input has {c} channels, but filter has {cg} per group x {groups} groups")
    if f % groups != 0:
        fail(f"filter count {f} is not divisible by groups {groups}")
    if bias is not None and list(bias) != [f]:
        fail(f"bias shape {fmt(bias)} must be [{f}] (one value per output channel)")
    out_hw = []
    for size, k, s, d, p0, p1 in zip((h, wd), (kh, kw), strides, dilations, pads[:2], pads[2:], strict=True):
        span = size + p0 + p1 - d * (k - 1) - 1
        if span < 0:
            fail(f"dilated kernel {d * (k - 1) + 1} is larger than the padded input {size + p0 + p1}")
        out_hw.append(span // s + 1)
    return [n, f, *out_hw]


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> np.ndarray:
    """ONNX Conv in float64, tap by tap: every (kernel row, kernel column) adds one strided window."""
    x = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    w = np.asarray(w, dtype=np.float64)
    n, _, h, wd = x.shape
    f, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    oh = (h - ((kh - 1) * dh + 1)) // sh + 1
    ow = (wd - ((kw - 1) * dw + 1)) // sw + 1
    fg = f // groups
    out = np.zeros((n, f, oh, ow))
    for g in range(groups):
        xs, ws = x[:, g * cg : (g + 1) * cg], w[g * fg : (g + 1) * fg]
        for i in range(kh):
            for j in range(kw):
                tap = xs[:, :, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw]
                out[:, g * fg : (g + 1) * fg] += np.einsum("nchw,fc->nfhw", tap, ws[:, :, i, j])
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out


def evaluate_conv2d(args: OpArgs[np.ndarray]) -> np.ndarray:
    a = args.attrs
    return conv2d(
        args["input"], args["filter"], args.get("bias"), a["strides"], a["pads"], a["dilations"], a["groups"]
    )


register(OpSemantics(wpk.Conv2DOp, shape=conv2d_shape, evaluate=evaluate_conv2d))
