"""Lowering of `wpk.resize` (modes nearest and linear) to one `linalg.generic` gather.

The source taps of one dimension depend only on its sizes, scale and modes, so they are
computed at compile time (float64) and embedded as constant tables read through projection
maps: nearest one input index per output index; linear a low and a high index (clamped to the
edge) and the high tap's weight. The body reads the input with `tensor.extract`; for linear
it blends the 2^k corners of the k resized dimensions. A dimension is resized unless its scale
is 1 and its size unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg, tensor

from woodpecker.dialect import attr_str, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    empty,
    f32,
    generic,
    identity_map,
    projection_map,
    scalar,
    tensor_of,
)
from woodpecker.lowering.movement import as_index, i64_table
from woodpecker.lowering.registry import lowers
from woodpecker.ops.resize import COORDINATE_MODES, NEAREST_MODES


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


def _f32_table(values: np.ndarray) -> ir.Value:
    attr = ir.DenseElementsAttr.get(np.ascontiguousarray(values, dtype=np.float32), type=f32())
    return arith.ConstantOp(tensor_of(values.shape), attr).result


def affine_tap(taps: np.ndarray) -> tuple[int, int, int] | None:
    """(m, q, c) when the nearest taps are `(i * m) floordiv q + c`: every m-th input from c
    (integer downsampling, q = 1) or each input q times (integer upsampling, m = 1); else None."""
    i = np.arange(len(taps))
    c = int(taps[0])
    step = int(taps[1] - taps[0]) if len(taps) > 1 else 1
    if step >= 1 and np.array_equal(taps, i * step + c):
        return step, 1, c
    repeats = int(np.sum(taps == taps[0]))
    if np.array_equal(taps, i // repeats + c):
        return 1, repeats, c
    return None


def _nearest_copy(x: ir.Value, out: list[int], affine: dict[int, tuple[int, int, int]]) -> ir.Value:
    """Nearest resize with every resized dimension an affine tap: a linalg.generic copy whose
    input map reads `(d * m) floordiv q + c` (no gather, so it vectorizes like a copy)."""
    rank = len(out)
    exprs: list[ir.AffineExpr] = []
    for d in range(rank):
        expr: ir.AffineExpr = ir.AffineDimExpr.get(d)
        if d in affine:
            m, q, c = affine[d]
            if m != 1:
                expr = ir.AffineMulExpr.get(expr, ir.AffineConstantExpr.get(m))
            if q != 1:
                expr = ir.AffineFloorDivExpr.get(expr, ir.AffineConstantExpr.get(q))
            if c:
                expr = ir.AffineAddExpr.get(expr, ir.AffineConstantExpr.get(c))
        exprs.append(expr)
    read = ir.AffineMap.get(rank, 0, exprs)
    return generic([x], [read, identity_map(rank)], empty(out), lambda args: args[0])


@lowers(wpk.ResizeOp)
def lower_resize(op: ir.Operation) -> ir.Value:
    """Nearest with integer factors: a copy with affine reads (`_nearest_copy`). Otherwise
    nearest: one table of source indices per resized dimension. Linear: per resized
    dimension a low and a high index table and the high tap's weight; the result blends the
    2^k corners of the k resized dimensions."""
    x, out = op.operands[0], shape_of(op.results[0])
    shape, scales = shape_of(x), list(ir.DenseF32ArrayAttr(op.attributes["scales"]))
    mode, coordinates = attr_str(op, "mode"), attr_str(op, "coordinate_transformation_mode")
    if not len(shape) == len(out) == len(scales):
        raise LoweringError(f"resize of {shape} to {out} needs one scale per dimension, got {scales}")
    rank = len(out)
    axes = [d for d in range(rank) if is_resized(shape[d], out[d], scales[d])]
    try:
        if mode == "nearest":
            nearest_mode = attr_str(op, "nearest_mode")
            affine = {d: affine_tap(nearest_taps(shape[d], out[d], scales[d], coordinates, nearest_mode)) for d in axes}
            # linalg infers loop bounds from bare-dimension reads: one must keep its size
            bare = [d for d, tap in affine.items() if tap == (1, 1, 0) and shape[d] != out[d]]
            if not bare and all(tap is not None for tap in affine.values()):
                return _nearest_copy(x, out, {d: tap for d, tap in affine.items() if tap is not None})
    except ValueError as err:
        raise LoweringError(str(err)) from err
    tables: list[ir.Value] = []
    maps: list[ir.AffineMap] = []
    try:
        for d in axes:
            if mode == "nearest":
                taps = [nearest_taps(shape[d], out[d], scales[d], coordinates, attr_str(op, "nearest_mode"))]
            elif mode == "linear":
                lo, hi, weight = linear_taps(shape[d], out[d], scales[d], coordinates)
                taps = [lo, hi, weight]
            else:
                raise LoweringError(f"resize mode '{mode}' is not nearest or linear")
            for table in taps:
                tables.append(_f32_table(table) if table.dtype.kind == "f" else i64_table(table))
                maps.append(projection_map(rank, [d]))
    except ValueError as err:
        raise LoweringError(str(err)) from err
    per_axis = 1 if mode == "nearest" else 3

    def body(args: Sequence[ir.Value]) -> ir.Value:
        base = [linalg.IndexOp(d).result for d in range(rank)]
        if mode == "nearest":
            indices = list(base)
            for k, d in enumerate(axes):
                indices[d] = as_index(args[k])
            return tensor.ExtractOp(x, indices).result
        one = scalar(1.0)
        taps = []
        for k in range(len(axes)):
            lo, hi, w = args[per_axis * k : per_axis * k + 3]
            taps.append(((as_index(lo), arith.SubFOp(one, w).result), (as_index(hi), w)))
        total: ir.Value | None = None
        for corner in range(1 << len(axes)):
            indices, weight = list(base), None
            for k, d in enumerate(axes):
                i, w = taps[k][(corner >> k) & 1]
                indices[d] = i
                weight = w if weight is None else arith.MulFOp(weight, w).result
            value = tensor.ExtractOp(x, indices).result
            term = value if weight is None else arith.MulFOp(value, weight).result
            total = term if total is None else arith.AddFOp(total, term).result
        assert total is not None
        return total

    return generic(tables, [*maps, identity_map(rank)], empty(out), body)
