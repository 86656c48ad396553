"""Pooling: max_pool and avg_pool (2-D, NCHW or blocked NCHW[b]c; ONNX MaxPool/AveragePool) and global_avg_pool.

The windows follow the ONNX definitions: pads are [top, left, bottom, right]; in ceil mode a
last window that would start past the input and its begin pad is dropped; an average counts the
taps inside the input, or with `count_include_pad` also those in the explicit pads (never those
in the ceil-mode overhang). The numpy evaluation walks the output window by window.

The verifier accepts a spatial result size from the floor count up to the ceil count (the
lowering handles either); `output_size` is the exact ONNX size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import Evaluator, OpSemantics, register
from woodpecker.ops.rules import expect_len, expect_rank, fail, fmt, non_negative, positive


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int, ceil: bool) -> int:
    """The ONNX output size of one spatial dimension."""
    total = size + pad_begin + pad_end - ((kernel - 1) * dilation + 1)
    out = (-(-total // stride) if ceil else total // stride) + 1
    if ceil and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def _window_attrs(args: OpArgs[Shape]) -> tuple[list[int], list[int], list[int], list[int]]:
    kernel = expect_len("kernel_shape", args.attr("kernel_shape"), 2)
    strides = expect_len("strides", args.attr("strides"), 2)
    pads = expect_len("pads", args.attr("pads"), 4)
    dilations = expect_len("dilations", args.attr("dilations"), 2)
    positive("kernel_shape", kernel)
    positive("strides", strides)
    positive("dilations", dilations)
    non_negative("pads", pads)
    return kernel, strides, pads, dilations


def _pooled_input(args: OpArgs[Shape]) -> list[int]:
    """The input shape: NCHW, or blocked (N, CB, H, W, b) (ops/layout.py: the lanes pool alone)."""
    x = list(args["input"])
    if len(x) != 5:
        expect_rank("input", x, 4)
    return x


def pool_shape(args: OpArgs[Shape]) -> Shape:
    """The exact ONNX result shape (ceil_mode included)."""
    x = _pooled_input(args)
    kernel, strides, pads, dilations = _window_attrs(args)
    ceil = bool(args.attr("ceil_mode"))
    spatial = [output_size(x[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + 2], ceil) for i in range(2)]
    return [*x[:2], *spatial, *x[4:]]


def check_pool(args: OpArgs[Shape]) -> None:
    """Input and attributes valid; each spatial result size between the floor and the ceil count."""
    x = _pooled_input(args)
    kernel, strides, pads, dilations = _window_attrs(args)
    out = list(args.result or ())
    expect_rank("result", out, len(x))
    if out[:2] != x[:2] or out[4:] != x[4:]:
        fail(f"result batch/channels {fmt(out[:2] + out[4:])} must equal the input's {fmt(x[:2] + x[4:])}")
    for i, (size, k, s, d) in enumerate(zip(x[2:4], kernel, strides, dilations, strict=True)):
        span = size + pads[i] + pads[i + 2] - d * (k - 1) - 1
        if span < 0:
            fail(f"dilated kernel {d * (k - 1) + 1} is larger than the padded input {size + pads[i] + pads[i + 2]}")
        # floor mode gives the lower bound, ceil mode at most one more window.
        low, high = span // s + 1, -(-span // s) + 1
        if not low <= out[2 + i] <= high:
            want = str(low) if low == high else f"{low} (floor) or {high} (ceil)"
            fail(f"result spatial dimension {i} is {out[2 + i]}, expected {want}")


def pool2d(
    x: np.ndarray,
    is_max: bool,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool,
    count_include_pad: bool = False,
    out_hw: Sequence[int] | None = None,
) -> np.ndarray:
    """Max or average pooling in float64, window by window (`out_hw`: the output size, by
    default the ONNX one)."""
    x = np.asarray(x, dtype=np.float64)
    n, c, h, w = x.shape
    pt, pl, pb, pr = pads
    if out_hw is None:
        out_hw = [
            output_size(size, kernel[i], strides[i], dilations[i], pads[i], pads[i + 2], ceil_mode)
            for i, size in enumerate((h, w))
        ]
    oh, ow = out_hw
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            ys = [oy * strides[0] - pt + i * dilations[0] for i in range(kernel[0])]
            xs = [ox * strides[1] - pl + j * dilations[1] for j in range(kernel[1])]
            inside = [(y, xx) for y in ys for xx in xs if 0 <= y < h and 0 <= xx < w]
            if not inside:  # a window entirely in the padding
                out[:, :, oy, ox] = -math.inf if is_max else 0.0
                continue
            values = np.stack([x[:, :, y, xx] for y, xx in inside], axis=-1)
            if is_max:
                out[:, :, oy, ox] = values.max(axis=-1)
                continue
            if count_include_pad:
                count = sum(1 for y in ys for xx in xs if -pt <= y < h + pb and -pl <= xx < w + pr)
            else:
                count = len(inside)
            out[:, :, oy, ox] = values.sum(axis=-1) / count
    return out


def _evaluate(is_max: bool) -> Evaluator:
    def evaluate(args: OpArgs[np.ndarray]) -> np.ndarray:
        a = args.attrs
        x = np.asarray(args["input"])
        blocked = x.ndim == 5
        if blocked:  # (N, CB, H, W, b): the lanes as channels
            n, cb, h, w, b = x.shape
            x = np.moveaxis(x, 4, 2).reshape(n, cb * b, h, w)
        out_hw = args.result[2:4] if args.result is not None else None
        out = pool2d(
            x,
            is_max,
            a["kernel_shape"],
            a["strides"],
            a["pads"],
            a["dilations"],
            a["ceil_mode"],
            bool(a.get("count_include_pad", False)),
            out_hw,
        )
        if blocked:
            out = np.moveaxis(out.reshape(n, cb, b, *out.shape[2:]), 2, 4)
        return out

    return evaluate


register(OpSemantics(wpk.MaxPoolOp, shape=pool_shape, check=check_pool, evaluate=_evaluate(True)))
register(OpSemantics(wpk.AvgPoolOp, shape=pool_shape, check=check_pool, evaluate=_evaluate(False)))


def global_avg_pool_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if len(x) < 3:
        fail(f"input must be at least 3-D (N, C, spatial...), but has rank {len(x)}")
    return [x[0], x[1]] + [1] * (len(x) - 2)


def evaluate_global_avg_pool(args: OpArgs[np.ndarray]) -> np.ndarray:
    x = args["input"]
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)


register(OpSemantics(wpk.GlobalAvgPoolOp, shape=global_avg_pool_shape, evaluate=evaluate_global_avg_pool))
