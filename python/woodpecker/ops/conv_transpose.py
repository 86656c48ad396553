"""2-D transposed convolution (NCHW input, ONNX [C, M / groups, kH, kW] filter; ONNX ConvTranspose)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.conv import checked_conv_args
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import expect_len, fail, fmt, non_negative


def full_size(size: int, kernel: int, stride: int, dilation: int, output_padding: int) -> int:
    """The transposed convolution's extent before the pads are cropped."""
    return stride * (size - 1) + output_padding + dilation * (kernel - 1) + 1


def conv_transpose2d_shape(args: OpArgs[Shape]) -> Shape:
    x, w, bias, strides, pads, dilations, groups = checked_conv_args(args)
    output_padding = expect_len("output_padding", args.attr("output_padding"), 2)
    non_negative("output_padding", output_padding)
    n, c, h, wd = x
    cw, mg, kh, kw = w
    if cw != c or c % groups != 0:
        fail(f"input has {c} channels, but the filter {fmt(w)} needs {cw} (divisible by groups {groups})")
    m = mg * groups
    if bias is not None and list(bias) != [m]:
        fail(f"bias shape {fmt(bias)} must be [{m}] (one value per output channel)")
    out_hw = []
    for i, (size, k) in enumerate(((h, kh), (wd, kw))):
        extent = full_size(size, k, strides[i], dilations[i], output_padding[i]) - pads[i] - pads[i + 2]
        if extent < 1:
            fail(f"pads {fmt(pads)} crop the whole output along spatial axis {i}")
        out_hw.append(extent)
    return [n, m, *out_hw]


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides: Sequence[int],
    pads: Sequence[int],
    output_padding: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> np.ndarray:
    """ONNX ConvTranspose in float64, tap by tap: each kernel position scatters the strided input."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    n, c, h, wd = x.shape
    _, mg, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    full_h = full_size(h, kh, sh, dh, output_padding[0])
    full_w = full_size(wd, kw, sw, dw, output_padding[1])
    cg = c // groups
    out = np.zeros((n, mg * groups, full_h, full_w))
    for g in range(groups):
        xs, ws = x[:, g * cg : (g + 1) * cg], w[g * cg : (g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                tap = np.einsum("nchw,cm->nmhw", xs, ws[:, :, i, j])
                rows = slice(i * dh, i * dh + (h - 1) * sh + 1, sh)
                cols = slice(j * dw, j * dw + (wd - 1) * sw + 1, sw)
                out[:, g * mg : (g + 1) * mg, rows, cols] += tap
    out = out[:, :, pads[0] : full_h - pads[2], pads[1] : full_w - pads[3]]
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out


def evaluate_conv_transpose2d(args: OpArgs[np.ndarray]) -> np.ndarray:
    a = args.attrs
    return conv_transpose2d(
        args["input"],
        args["filter"],
        args.get("bias"),
        a["strides"],
        a["pads"],
        a["output_padding"],
        a["dilations"],
        a["groups"],
    )


register(OpSemantics(wpk.ConvTranspose2DOp, shape=conv_transpose2d_shape, evaluate=evaluate_conv_transpose2d))
