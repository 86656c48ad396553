"""Resize (ONNX Resize, modes nearest and linear), evaluated as the ONNX reference does.

A dimension is resized unless its scale is 1 and its size unchanged. Each resized dimension is
interpolated in turn over a two-tap window of the edge-padded input (the reference's
formulation; the lowering, lowering/resize.py, computes its index tables on its own).
"""

from __future__ import annotations

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import NotEvaluable, OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import fail, fmt

RESIZE_MODES = ("nearest", "linear")
COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
)
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _coordinate(y: np.ndarray, in_size: int, out_size: int, scale: float, mode: str) -> np.ndarray:
    """ONNX Resize's x_original of output coordinates `y` (the reference's formulas)."""
    output_width = scale * in_size
    if mode == "align_corners":
        return np.zeros_like(y) if output_width == 1 else y * (in_size - 1) / (output_width - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "pytorch_half_pixel":
        return np.full_like(y, -0.5) if output_width == 1 else (y + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        return in_size / 2 * (1 - out_size / output_width) + (y + 0.5) / scale - 0.5
    if mode == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale
    raise NotEvaluable(f"coordinate_transformation_mode '{mode}'")


def _window(x: np.ndarray, mode: str, nearest_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The reference's two-tap window [left, left + 1] around each x (left of an integer x is x - 1,
    ratio 1) and the coefficients of both taps."""
    left = np.floor(x)
    integer = x == left
    ratio = np.where(integer, 1.0, x - left)
    left = np.where(integer, left - 1, left)
    if mode == "linear":
        return left, np.stack([1 - ratio, ratio], axis=-1)
    if nearest_mode == "round_prefer_floor":
        right = ratio > 0.5
    elif nearest_mode == "round_prefer_ceil":
        right = ratio >= 0.5
    elif nearest_mode == "floor":
        right = np.zeros_like(integer)
    elif nearest_mode == "ceil":
        right = np.ones_like(integer)
    else:
        raise NotEvaluable(f"nearest_mode '{nearest_mode}'")
    right = right | integer
    return left, np.stack([~right, right], axis=-1).astype(np.float64)


def check_resize(args: OpArgs[Shape]) -> None:
    x, out = list(args["input"]), list(args.result or ())
    scales = list(args.attr("scales"))
    if not len(x) == len(out) == len(scales):
        fail(f"input {fmt(x)}, result {fmt(out)} and scales {list(scales)} differ in rank")
    if any(s <= 0 for s in scales):
        fail(f"scales {list(scales)} must be positive")
    if args.attr("mode") not in RESIZE_MODES:
        fail(f"attribute 'mode' is '{args.attr('mode')}', expected one of {', '.join(RESIZE_MODES)}")
    if args.attr("coordinate_transformation_mode") not in COORDINATE_MODES:
        fail(f"attribute 'coordinate_transformation_mode' is '{args.attr('coordinate_transformation_mode')}'")
    if args.attr("nearest_mode") not in NEAREST_MODES:
        fail(f"attribute 'nearest_mode' is '{args.attr('nearest_mode')}'")


def evaluate_resize(args: OpArgs[np.ndarray]) -> np.ndarray:
    """One dimension at a time, as the ONNX reference: each output element is the coefficient-
    weighted sum of a two-tap window of edge-padded input (nearest: coefficients 0 and 1)."""
    result = args["input"]
    mode = args.attr("mode")
    for axis, (n_in, n_out, scale) in enumerate(
        zip(result.shape, args.result_shape(), args.attr("scales"), strict=True)
    ):
        scale = float(scale)
        if n_in == n_out and scale == 1.0:
            continue
        y = np.arange(n_out, dtype=np.float64)
        x = _coordinate(y, n_in, n_out, scale, args.attr("coordinate_transformation_mode"))
        left, coeffs = _window(x, mode, args.attr("nearest_mode"))
        taps = np.clip(left[:, None] + np.arange(2)[None, :], 0, n_in - 1).astype(np.intp)
        gathered = np.take(result, taps, axis=axis)  # [..., n_out, 2, ...]
        shape = (1,) * axis + coeffs.shape + (1,) * (result.ndim - axis - 1)
        result = (gathered * coeffs.reshape(shape)).sum(axis=axis + 1)
    return result


register(OpSemantics(wpk.ResizeOp, check=check_resize, evaluate=evaluate_resize))
