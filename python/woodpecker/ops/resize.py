"""Resize (ONNX Resize, modes nearest and linear): where each output coordinate reads the input.

The source taps of one dimension depend only on its sizes, scale and modes, so they are
computed here once, in float64, for both the numpy evaluation and the lowering (which embeds
them as constant index and weight tables): `nearest_taps` gives one input index per output
index, `linear_taps` two indices and the weight of the second. A dimension is resized unless
its scale is 1 and its size unchanged (then it is read as is, as in the ONNX reference).
"""

from __future__ import annotations

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
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


def is_resized(in_size: int, out_size: int, scale: float) -> bool:
    return not (in_size == out_size and scale == 1.0)


def source_coordinates(in_size: int, out_size: int, scale: float, mode: str) -> np.ndarray:
    """The (fractional) input coordinate of each output index of one dimension."""
    y = np.arange(out_size, dtype=np.float64)
    width = scale * in_size  # the unrounded output size, as the ONNX reference uses it
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = in_size / 2 * (1 - out_size / width)
        return offset + (y + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return np.full(out_size, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    if mode == "align_corners":
        return np.zeros(out_size) if width == 1 else y * (in_size - 1) / (width - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale
    raise ValueError(f"coordinate_transformation_mode '{mode}' is not one of {', '.join(COORDINATE_MODES)}")


def nearest_taps(in_size: int, out_size: int, scale: float, mode: str, nearest_mode: str) -> np.ndarray:
    """The input index each output index copies (int64, clamped into the input)."""
    x = source_coordinates(in_size, out_size, scale, mode)
    low = np.floor(x)
    ratio = x - low
    if nearest_mode == "round_prefer_floor":
        up = ratio > 0.5
    elif nearest_mode == "round_prefer_ceil":
        up = ratio >= 0.5
    elif nearest_mode == "floor":
        up = np.zeros(out_size, dtype=bool)
    elif nearest_mode == "ceil":
        up = ratio > 0
    else:
        raise ValueError(f"nearest_mode '{nearest_mode}' is not one of {', '.join(NEAREST_MODES)}")
    return np.clip(low + up, 0, in_size - 1).astype(np.int64)


def linear_taps(in_size: int, out_size: int, scale: float, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low index, high index, weight of high) per output index; indices clamped (edge)."""
    x = source_coordinates(in_size, out_size, scale, mode)
    low = np.floor(x)
    weight = x - low
    lo = np.clip(low, 0, in_size - 1).astype(np.int64)
    hi = np.clip(low + 1, 0, in_size - 1).astype(np.int64)
    return lo, hi, weight


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
    """One dimension at a time (nearest: a gather; linear: a blend of two gathers)."""
    result = args["input"]
    mode, coordinates = args.attr("mode"), args.attr("coordinate_transformation_mode")
    for axis, (n_in, n_out, scale) in enumerate(
        zip(result.shape, args.result_shape(), args.attr("scales"), strict=True)
    ):
        if not is_resized(n_in, n_out, float(scale)):
            continue
        if mode == "nearest":
            result = np.take(
                result, nearest_taps(n_in, n_out, float(scale), coordinates, args.attr("nearest_mode")), axis
            )
            continue
        lo, hi, weight = linear_taps(n_in, n_out, float(scale), coordinates)
        w = weight.reshape((1,) * axis + (n_out,) + (1,) * (result.ndim - axis - 1))
        result = np.take(result, lo, axis) * (1 - w) + np.take(result, hi, axis) * w
    return result


register(OpSemantics(wpk.ResizeOp, check=check_resize, evaluate=evaluate_resize))
