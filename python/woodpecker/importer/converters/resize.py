"""The Resize converter (modes nearest and linear; scales or sizes as constant inputs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.importer import shapes
from woodpecker.importer.converters.movement import ints, no_empty
from woodpecker.importer.converters.registry import Result, converts
from woodpecker.importer.node import NodeContext
from woodpecker.ops.resize import COORDINATE_MODES, NEAREST_MODES, RESIZE_MODES


def _resize_axes(ctx: NodeContext, rank: int) -> list[int]:
    axes = ctx.attr_ints("axes")
    if axes is None:
        return list(range(rank))
    axes = [ctx.compute(shapes.normalize_axis, a, rank) for a in axes]
    ctx.check(len(set(axes)) == len(axes), f"axes {axes} repeat a dimension")
    return axes


def _resize_target(ctx: NodeContext, in_shape: list[int]) -> tuple[list[int], list[float]]:
    """The output shape and the per-dimension scales of the coordinate transformation."""
    rank = len(in_shape)
    axes = _resize_axes(ctx, rank)
    scales_array = ctx.optional_constant(2, "scales")
    sizes_array = ctx.optional_constant(3, "sizes") if ctx.has_input(3) else None
    if scales_array is not None and scales_array.size == 0:
        scales_array = None
    if sizes_array is not None and sizes_array.size == 0:
        sizes_array = None
    if (scales_array is None) == (sizes_array is None):
        raise ctx.unsupported("exactly one of the inputs scales and sizes must be given")
    if scales_array is not None:
        given = [float(np.float32(s)) for s in np.asarray(scales_array).reshape(-1)]
        ctx.check(len(given) == len(axes), f"scales {given} should have {len(axes)} values")
        ctx.check(all(s > 0 for s in given), f"scales {given} must be positive")
        scales = [1.0] * rank
        for a, s in zip(axes, given, strict=True):
            scales[a] = s
        return [int(s * d) for s, d in zip(scales, in_shape, strict=True)], scales
    given_sizes = ints(sizes_array)
    ctx.check(len(given_sizes) == len(axes), f"sizes {given_sizes} should have {len(axes)} values")
    out = list(in_shape)
    for a, s in zip(axes, given_sizes, strict=True):
        out[a] = s
    scales = [o / d for o, d in zip(out, in_shape, strict=True)]
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch") or "stretch"
    if policy == "stretch":
        return out, scales
    if policy not in ("not_larger", "not_smaller"):
        raise ctx.unsupported(f"keep_aspect_ratio_policy '{policy}' is not supported")
    pick = min if policy == "not_larger" else max
    scale = pick(scales[a] for a in axes)
    scales = [scale if a in axes else 1.0 for a in range(rank)]
    return [int(scale * d + 0.5) if a in axes else d for a, d in enumerate(in_shape)], scales


@converts("Resize")
def convert_resize(ctx: NodeContext) -> Sequence[Result]:
    mode = ctx.attr("mode", "nearest") or "nearest"
    if mode not in RESIZE_MODES:
        raise ctx.unsupported(f"mode '{mode}' is not supported (expected one of {', '.join(RESIZE_MODES)})")
    coordinates = ctx.attr("coordinate_transformation_mode", "half_pixel") or "half_pixel"
    if coordinates not in COORDINATE_MODES:
        raise ctx.unsupported(
            f"coordinate_transformation_mode '{coordinates}' is not supported (expected one of "
            f"{', '.join(COORDINATE_MODES)})"
        )
    nearest_mode = ctx.attr("nearest_mode", "round_prefer_floor") or "round_prefer_floor"
    if nearest_mode not in NEAREST_MODES:
        raise ctx.unsupported(f"nearest_mode '{nearest_mode}' is not supported")
    if int(ctx.attr("antialias", 0)):
        raise ctx.unsupported("antialias=1 is not supported")
    x = ctx.tensor(0)
    in_shape = ctx.shape_of(x)
    out_shape, scales = _resize_target(ctx, in_shape)
    no_empty(ctx, out_shape)
    shape = ctx.output_shape(0, lambda: out_shape)
    if shape == in_shape and all(s == 1.0 for s in scales):
        return [x]
    return [ctx.emit(wpk.ResizeOp, shape, x, scales, mode, coordinates, nearest_mode)]
