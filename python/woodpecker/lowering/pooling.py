"""Lowering of `wpk.max_pool` and `wpk.avg_pool` to named linalg pooling ops.

Both pad explicitly (max with -inf, average with 0), adding end padding in
ceil_mode so the last window fits. Average pooling divides a
linalg.pooling_nchw_sum by a per-position element count computed here with
numpy, following ONNX: with count_include_pad the explicit pads count but the
ceil_mode overhang does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg

from woodpecker.dialect import attr_bool, attr_ints, shape_of, wpk
from woodpecker.lowering.common import (
    LoweringError,
    collapse,
    dense_constant,
    empty,
    expand,
    fill,
    generic,
    identity_map,
    pad,
    projection_map,
)
from woodpecker.lowering.registry import lowers


@dataclass(frozen=True)
class Window:
    """One spatial axis of a pooling window."""

    size: int
    kernel: int
    stride: int
    dilation: int
    pad_begin: int
    pad_end: int

    @property
    def span(self) -> int:
        return (self.kernel - 1) * self.dilation + 1

    def output_size(self, ceil_mode: bool) -> int:
        """ONNX output size; in ceil_mode the last window must start inside input or left pad."""
        room = self.size + self.pad_begin + self.pad_end - self.span
        if not ceil_mode:
            return room // self.stride + 1
        out = -(-room // self.stride) + 1
        if (out - 1) * self.stride >= self.size + self.pad_begin:
            out -= 1
        return out

    def overhang(self, out: int) -> int:
        """Extra end padding so that `out` windows fit in the padded input."""
        return max(0, (out - 1) * self.stride + self.span - (self.size + self.pad_begin + self.pad_end))

    def counts(self, out: int, include_pad: bool) -> np.ndarray:
        """How many taps of each of the `out` windows are counted by the average."""
        lo, hi = (-self.pad_begin, self.size + self.pad_end) if include_pad else (0, self.size)
        taps = (np.arange(out) * self.stride - self.pad_begin)[:, None] + np.arange(self.kernel) * self.dilation
        return ((taps >= lo) & (taps < hi)).sum(axis=1)


def _windows(op: ir.Operation) -> tuple[Window, Window, list[int]]:
    kernel, strides = attr_ints(op, "kernel_shape"), attr_ints(op, "strides")
    pads, dilations = attr_ints(op, "pads"), attr_ints(op, "dilations")
    for name, values in (("kernel_shape", kernel), ("strides", strides), ("dilations", dilations)):
        if len(values) != 2 or any(v < 1 for v in values):
            raise LoweringError(f"'{name}' must hold 2 positive values, got {values}")
    if len(pads) != 4 or any(p < 0 for p in pads):
        raise LoweringError(f"'pads' must hold 4 non-negative values, got {pads}")
    shape = shape_of(op.operands[0])
    if len(shape) not in (4, 5):
        raise LoweringError(f"pooling needs a 4-D NCHW or 5-D blocked input, got shape {shape}")
    wh = Window(shape[2], kernel[0], strides[0], dilations[0], pads[0], pads[2])
    ww = Window(shape[3], kernel[1], strides[1], dilations[1], pads[1], pads[3])
    ceil_mode = attr_bool(op, "ceil_mode")
    out = shape_of(op.results[0])
    expected = [*shape[:2], wh.output_size(ceil_mode), ww.output_size(ceil_mode), *shape[4:]]
    if out != expected:
        raise LoweringError(f"pooling result shape {out} is not the expected {expected}")
    return wh, ww, out


def _padded(op: ir.Operation, wh: Window, ww: Window, out: list[int], value: float) -> ir.Value:
    extra = [0] * (len(out) - 4)
    low = [0, 0, wh.pad_begin, ww.pad_begin, *extra]
    high = [0, 0, wh.pad_end + wh.overhang(out[2]), ww.pad_end + ww.overhang(out[3]), *extra]
    return pad(op.operands[0], low, high, value)


def _pool(xp: ir.Value, wh: Window, ww: Window, out: list[int], init: float, is_max: bool) -> ir.Value:
    """linalg.pooling_nchw_max/sum, or for a blocked (N, CB, H, W, b) input the nhwc pooling of
    its (N * CB, H, W, b) view."""
    window = empty([wh.kernel, ww.kernel])
    if len(out) == 4:
        named = linalg.pooling_nchw_max if is_max else linalg.pooling_nchw_sum
        return named(xp, window, outs=[fill(init, out)], **_attrs(wh, ww))
    n, cb, oh, ow, b = out
    flat = collapse(xp, [[0, 1], [2], [3], [4]])
    named = linalg.pooling_nhwc_max if is_max else linalg.pooling_nhwc_sum
    pooled = named(flat, window, outs=[fill(init, [n * cb, oh, ow, b])], **_attrs(wh, ww))
    return expand(pooled, [[0, 1], [2], [3], [4]], out)


def _attrs(wh: Window, ww: Window) -> dict[str, list[int]]:
    return {"strides": [wh.stride, ww.stride], "dilations": [wh.dilation, ww.dilation]}


@lowers(wpk.MaxPoolOp)
def lower_max_pool(op: ir.Operation) -> ir.Value:
    wh, ww, out = _windows(op)
    xp = _padded(op, wh, ww, out, -math.inf)
    return _pool(xp, wh, ww, out, -math.inf, True)


def avg_pool_divisor(wh: Window, ww: Window, out_h: int, out_w: int, include_pad: bool) -> np.ndarray:
    """[out_h, out_w] element counts of each window (at least 1)."""
    counts = np.outer(wh.counts(out_h, include_pad), ww.counts(out_w, include_pad))
    return np.maximum(counts, 1).astype(np.float32)


@lowers(wpk.AvgPoolOp)
def lower_avg_pool(op: ir.Operation) -> ir.Value:
    wh, ww, out = _windows(op)
    xp = _padded(op, wh, ww, out, 0.0)
    summed = _pool(xp, wh, ww, out, 0.0, False)
    divisor = avg_pool_divisor(wh, ww, out[2], out[3], attr_bool(op, "count_include_pad"))
    rank = len(out)
    maps = [identity_map(rank), projection_map(rank, [2, 3]), identity_map(rank)]
    return generic(
        [summed, dense_constant(divisor)],
        maps,
        empty(out),
        lambda args: arith.DivFOp(args[0], args[1]).result,
    )
