"""Data movement: slice (strided, negative steps), expand (broadcast) and gather_elements."""

from __future__ import annotations

import math

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import axis_in_range, broadcast_shapes, fail, fmt


def slice_indices(start: int, step: int, count: int) -> list[int]:
    """The input indices a slice dimension reads: start, start + step, ... (count of them)."""
    return [start + i * step for i in range(count)]


def check_slice(args: OpArgs[Shape]) -> None:
    """One start and non-zero step per dimension; every index read lies in the input."""
    x, out = list(args["input"]), list(args.result or ())
    starts, steps = list(args.attr("starts")), list(args.attr("steps"))
    if not len(starts) == len(steps) == len(x) == len(out):
        fail(f"input {fmt(x)}, result {fmt(out)}, starts {fmt(starts)} and steps {fmt(steps)} differ in rank")
    for d, (size, start, step, count) in enumerate(zip(x, starts, steps, out, strict=True)):
        if step == 0:
            fail(f"step of dimension {d} is 0")
        last = start + (count - 1) * step
        if count < 1 or not (0 <= start < size and 0 <= last < size):
            fail(f"dimension {d}: {count} elements from {start} by {step} leave the input size {size}")


def evaluate_slice(args: OpArgs[np.ndarray]) -> np.ndarray:
    x, out = args["input"], args.result_shape()
    index = np.ix_(
        *(slice_indices(s, t, n) for s, t, n in zip(args.attr("starts"), args.attr("steps"), out, strict=True))
    )
    return x[index]


def check_expand(args: OpArgs[Shape]) -> None:
    """The result is the numpy broadcast of the input with itself (ONNX Expand's shape rule)."""
    x, out = list(args["input"]), list(args.result or ())
    if len(out) < len(x) or broadcast_shapes(x, out) != out:
        fail(f"input {fmt(x)} does not broadcast to the result shape {fmt(out)}")


def evaluate_expand(args: OpArgs[np.ndarray]) -> np.ndarray:
    return np.broadcast_to(args["input"], args.result_shape()).copy()


def check_gather_elements(args: OpArgs[Shape]) -> None:
    x, out = list(args["input"]), list(args.result or ())
    indices = list(args.attr("indices"))
    if len(out) != len(x):
        fail(f"result {fmt(out)} and input {fmt(x)} differ in rank")
    axis = axis_in_range(args.attr("axis"), len(x))
    if any(o > d for i, (o, d) in enumerate(zip(out, x, strict=True)) if i != axis):
        fail(f"result {fmt(out)} is larger than input {fmt(x)} outside axis {axis}")
    if len(indices) != math.prod(out):
        fail(f"{len(indices)} indices for a result of {math.prod(out)} elements")
    if any(not 0 <= i < x[axis] for i in indices):
        fail(f"an index lies outside [0, {x[axis]}) on axis {axis}")


def evaluate_gather_elements(args: OpArgs[np.ndarray]) -> np.ndarray:
    out = args.result_shape()
    indices = np.asarray(args.attr("indices"), dtype=np.int64).reshape(out)
    x = args["input"]
    axis = args.attr("axis")
    grid = list(np.indices(out, sparse=True))
    grid[axis] = indices
    return x[tuple(grid)]


register(OpSemantics(wpk.SliceOp, check=check_slice, evaluate=evaluate_slice))
register(OpSemantics(wpk.ExpandOp, check=check_expand, evaluate=evaluate_expand))
register(OpSemantics(wpk.GatherElementsOp, check=check_gather_elements, evaluate=evaluate_gather_elements))
