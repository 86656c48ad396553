"""Data movement and shape converters: shape arithmetic folded at import, and data movement.

With static input shapes the shape subgraphs exporters emit (Shape, Size, ConstantOfShape,
Range, Slice/Expand/Tile/... of constants, an If on a constant condition) fold to numpy
constants here, so no shape op reaches the IR. On run-time f32 tensors:

| ONNX op | wpk ops |
| --- | --- |
| Slice | slice (strided, negative steps) |
| Split | one slice per used output |
| Expand | expand |
| Tile | reshape, expand, reshape |
| DepthToSpace, SpaceToDepth | reshape, transpose, reshape |
| GatherElements (constant indices; run-time ones: index.py) | gather_elements |

Resize is in resize.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import onnx

from woodpecker.dialect import wpk
from woodpecker.importer import shapes
from woodpecker.importer.converters.index import emit_take_along_axis
from woodpecker.importer.converters.registry import CONVERTERS, Result, converts
from woodpecker.importer.node import NodeContext, ValueInfo
from woodpecker.importer.values import materialize, sanitize_resource_name

_EMPTY = "empty (zero-sized) tensors are not compiled"

# ----------------------------------------------------------------------------
# Helpers.


def ints(array: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(array).reshape(-1)]


def _scalar_of(ctx: NodeContext, index: int, what: str) -> np.ndarray:
    array = np.asarray(ctx.constant(index, what))
    if array.size != 1:
        raise ctx.unsupported(f"input {what} must hold one value, got shape {list(array.shape)}")
    return array.reshape(())


def _data(ctx: NodeContext) -> np.ndarray | None:
    """Input 0 as a numpy array when it is a constant, else None."""
    return ctx.values.constants[ctx.input_name(0)] if ctx.is_constant(0) else None


def _fold_admitted(ctx: NodeContext, shape: Sequence[int], dtype: np.dtype) -> bool:
    """Whether a constant result of `shape` fits the fold budget. A float one over it is left to
    run time; any other cannot be a tensor, so it is an error naming the node."""
    if ctx.values.fold_budget.admits(shape, np.dtype(dtype).itemsize):
        return True
    if np.dtype(dtype).kind == "f":
        return False
    raise ctx.shape_error(
        f"folding it would make a {list(shape)} {np.dtype(dtype)} array, over the fold budget "
        f"({ctx.values.fold_budget.options.max_tensor_bytes} bytes per tensor)"
    )


def no_empty(ctx: NodeContext, shape: Sequence[int]) -> None:
    ctx.check(all(d > 0 for d in shape), f"the result shape {list(shape)} is empty; {_EMPTY}")


# ----------------------------------------------------------------------------
# Shape arithmetic (folded at import).


@converts("Shape")
def convert_shape(ctx: NodeContext) -> Sequence[Result]:
    dims = ctx.input_shape(0)
    rank = len(dims)
    start, end = int(ctx.attr("start", 0)), int(ctx.attr("end", rank))
    start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end))
    return [np.asarray(dims[start:end], dtype=np.int64)]


@converts("Size")
def convert_size(ctx: NodeContext) -> Sequence[Result]:
    return [np.asarray(math.prod(ctx.input_shape(0)), dtype=np.int64)]


@converts("ConstantOfShape")
def convert_constant_of_shape(ctx: NodeContext) -> Sequence[Result]:
    shape = ints(ctx.constant(0, "input (the shape)"))
    ctx.check(all(d >= 0 for d in shape), f"shape {shape} has a negative dimension")
    value = np.asarray(ctx.attr("value", np.zeros(1, dtype=np.float32)))
    ctx.check(value.size == 1, f"attribute 'value' must hold one element, got shape {list(value.shape)}")
    if _fold_admitted(ctx, shape, value.dtype):
        return [np.full(shape, value.reshape(()), dtype=value.dtype)]
    no_empty(ctx, shape)
    fill = value.astype(np.float32).reshape([1] * len(shape))
    scalar = materialize(fill, sanitize_resource_name(f"{ctx.name}_value"), ctx.values.weights, ctx.loc)
    return [ctx.emit(wpk.ExpandOp, ctx.output_shape(0, lambda: shape), scalar)]


@converts("Range")
def convert_range(ctx: NodeContext) -> Sequence[Result]:
    start, limit, delta = (_scalar_of(ctx, i, what) for i, what in enumerate(("start", "limit", "delta")))
    ctx.check(float(delta) != 0, "delta is 0")
    count = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    if not _fold_admitted(ctx, [count], start.dtype):
        raise ctx.shape_error(f"a Range of {count} elements is over the fold budget")
    return [
        (start + np.arange(count, dtype=np.float64 if start.dtype.kind == "f" else np.int64) * delta).astype(
            start.dtype
        )
    ]


@converts("If")
def convert_if(ctx: NodeContext) -> Sequence[Result]:
    """The taken branch inlined, when the condition is a constant (folded at import)."""
    if not ctx.is_constant(0):
        raise ctx.unsupported(
            f"the condition '{ctx.input_name(0)}' is computed at run time; only an If whose condition "
            "folds to a constant at import is supported (its taken branch is inlined)"
        )
    condition = np.asarray(ctx.constant(0, "cond"))
    ctx.check(condition.size == 1, f"the condition has shape {list(condition.shape)}, not one element")
    branch = ctx.attr("then_branch" if bool(condition.reshape(-1)[0]) else "else_branch")
    if not isinstance(branch, onnx.GraphProto):
        raise ctx.unsupported("the taken branch is missing")
    return _inline(ctx, branch)


def _inline(ctx: NodeContext, graph: onnx.GraphProto) -> list[Result]:
    from woodpecker.importer.builder import _store_results  # the builder imports the converters

    infos = dict(ctx.infos)
    for value in [*graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type") and value.name not in infos:
            tensor = value.type.tensor_type
            static = tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim)
            shape = tuple(int(d.dim_value) for d in tensor.shape.dim) if static else None
            infos[value.name] = ValueInfo(tensor.elem_type, shape)
    used = set(ctx.used) | {name for node in graph.node for name in node.input if name}
    used.update(output.name for output in graph.output)
    for init in graph.initializer:
        ctx.values.set_constant(init.name, onnx.numpy_helper.to_array(init))
    for index, node in enumerate(graph.node):
        label = f"{ctx.name}/{node.name or f'{node.op_type}_{index}'}"
        convert = CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if convert is None:
            raise ctx.unsupported(f"the taken branch has node '{label}' of unsupported op type {node.op_type}")
        inner = NodeContext(node, label, ctx.opset, ctx.values, infos, used, ctx.supported)
        _store_results(ctx.values, node, label, list(convert(inner)))
    results: list[Result] = []
    for output in graph.output:
        if not ctx.values.has(output.name):
            raise ctx.unsupported(f"the taken branch does not produce its output '{output.name}'")
        if ctx.values.is_constant(output.name):
            results.append(ctx.values.constants[output.name])
        else:
            results.append(ctx.values.values[output.name])
    return results


# ----------------------------------------------------------------------------
# Slice and Split.


def _slice_dims(ctx: NodeContext, in_shape: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """Per dimension: the first index read, the step and the element count (ONNX clamping)."""
    rank = len(in_shape)
    starts_in, ends_in = ints(ctx.constant(1, "starts")), ints(ctx.constant(2, "ends"))
    axes_array = ctx.optional_constant(3, "axes")
    axes = ints(axes_array) if axes_array is not None else list(range(len(starts_in)))
    steps_array = ctx.optional_constant(4, "steps")
    steps_in = ints(steps_array) if steps_array is not None else [1] * len(starts_in)
    ctx.check(
        len(starts_in) == len(ends_in) == len(axes) == len(steps_in),
        f"starts {starts_in}, ends {ends_in}, axes {axes} and steps {steps_in} differ in length",
    )
    axes = [ctx.compute(shapes.normalize_axis, a, rank) for a in axes]
    ctx.check(len(set(axes)) == len(axes), f"axes {axes} repeat a dimension")
    starts, steps, counts = [0] * rank, [1] * rank, list(in_shape)
    for axis, start, end, step in zip(axes, starts_in, ends_in, steps_in, strict=True):
        ctx.check(step != 0, f"step of axis {axis} is 0")
        dim = in_shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        starts[axis], steps[axis] = start, step
        counts[axis] = max(0, -(-(end - start) // step))
    return starts, steps, counts


def _take(array: np.ndarray, starts: Sequence[int], steps: Sequence[int], counts: Sequence[int]) -> np.ndarray:
    ranges = [np.arange(s, s + n * t, t, dtype=np.int64)[:n] for s, t, n in zip(starts, steps, counts, strict=True)]
    return array[np.ix_(*ranges)] if array.ndim else array


def _slice(ctx: NodeContext, starts: list[int], steps: list[int], counts: list[int], out: int = 0) -> Result:
    data = _data(ctx)
    if data is not None and _fold_admitted(ctx, counts, data.dtype):
        return _take(data, starts, steps, counts)
    in_shape = ctx.input_shape(0)
    if counts == list(in_shape) and all(t == 1 for t in steps):
        return ctx.tensor(0)
    no_empty(ctx, counts)
    x = ctx.tensor(0)
    shape = ctx.output_shape(out, lambda: counts)
    return ctx.emit(wpk.SliceOp, shape, x, starts, steps)


@converts("Slice")
def convert_slice(ctx: NodeContext) -> Sequence[Result]:
    starts, steps, counts = _slice_dims(ctx, ctx.input_shape(0))
    return [_slice(ctx, starts, steps, counts)]


def _split_sizes(ctx: NodeContext, dim: int) -> list[int]:
    outputs = len(ctx.node.output)
    if ctx.opset >= 13:
        split_array = ctx.optional_constant(1, "split")
        split = ints(split_array) if split_array is not None else None
    else:
        split = ctx.attr_ints("split")
    if split is not None:
        ctx.check(len(split) == outputs, f"split {split} has {len(split)} sizes for {outputs} outputs")
        ctx.check(sum(split) == dim and min(split) >= 0, f"split {split} does not add up to the axis size {dim}")
        return split
    parts = int(ctx.attr("num_outputs", outputs))
    ctx.check(parts == outputs, f"num_outputs {parts} differs from the {outputs} outputs")
    if "num_outputs" in ctx.attrs:
        chunk = -(-dim // parts)
        sizes = [min(chunk, max(dim - i * chunk, 0)) for i in range(parts)]
        ctx.check(sum(sizes) == dim and all(s > 0 for s in sizes), f"axis size {dim} cannot be split into {parts}")
        return sizes
    ctx.check(dim % parts == 0, f"axis size {dim} is not divisible into {parts} equal parts")
    return [dim // parts] * parts


@converts("Split")
def convert_split(ctx: NodeContext) -> Sequence[Result]:
    in_shape = ctx.input_shape(0)
    axis = ctx.compute(shapes.normalize_axis, int(ctx.attr("axis", 0)), len(in_shape))
    sizes = _split_sizes(ctx, in_shape[axis])
    results: list[Result] = []
    offset = 0
    for index, size in enumerate(sizes):
        starts, steps, counts = [0] * len(in_shape), [1] * len(in_shape), list(in_shape)
        starts[axis], counts[axis] = offset, size
        offset += size
        if not ctx.output_used(index) and not ctx.is_constant(0):
            results.append(None)
            continue
        results.append(_slice(ctx, starts, steps, counts, index))
    return results


# ----------------------------------------------------------------------------
# Expand, Tile, DepthToSpace, SpaceToDepth.


@converts("Expand")
def convert_expand(ctx: NodeContext) -> Sequence[Result]:
    target = ints(ctx.constant(1, "shape"))
    out_shape = ctx.compute(shapes.broadcast, ctx.input_shape(0), target)
    data = _data(ctx)
    if data is not None and _fold_admitted(ctx, out_shape, data.dtype):
        return [np.broadcast_to(data, out_shape).copy()]
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: out_shape)
    if ctx.shape_of(x) == shape:
        return [x]
    no_empty(ctx, shape)
    return [ctx.emit(wpk.ExpandOp, shape, x)]


@converts("Tile")
def convert_tile(ctx: NodeContext) -> Sequence[Result]:
    in_shape = ctx.input_shape(0)
    repeats = ints(ctx.constant(1, "repeats"))
    ctx.check(len(repeats) == len(in_shape), f"repeats {repeats} should have {len(in_shape)} values")
    ctx.check(all(r >= 0 for r in repeats), f"repeats {repeats} must be non-negative")
    out_shape = [d * r for d, r in zip(in_shape, repeats, strict=True)]
    data = _data(ctx)
    if data is not None and _fold_admitted(ctx, out_shape, data.dtype):
        return [np.tile(data, repeats)]
    no_empty(ctx, out_shape)
    x = ctx.tensor(0)
    ctx.output_shape(0, lambda: out_shape)
    if out_shape == in_shape:
        return [x]
    # x[..., d] -> [..., 1, d] -> [..., r, d] -> [..., r * d]: row-major, the copies come first.
    spread = ctx.emit(wpk.ReshapeOp, [v for d in in_shape for v in (1, d)], x)
    copies = ctx.emit(wpk.ExpandOp, [v for d, r in zip(in_shape, repeats, strict=True) for v in (r, d)], spread)
    return [ctx.emit(wpk.ReshapeOp, out_shape, copies)]


def _rearrange(ctx: NodeContext, split: list[int], perm: list[int], out_shape: list[int]) -> Result:
    """reshape(split) -> transpose(perm) -> reshape(out_shape), folded on a constant input."""
    data = _data(ctx)
    if data is not None:
        return data.reshape(split).transpose(perm).reshape(out_shape)
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: out_shape)
    parts = ctx.emit(wpk.ReshapeOp, split, x)
    moved = ctx.emit(wpk.TransposeOp, [split[p] for p in perm], parts, perm)
    return ctx.emit(wpk.ReshapeOp, shape, moved)


def _blocks(ctx: NodeContext) -> tuple[list[int], int, str]:
    in_shape = ctx.input_shape(0)
    ctx.check(len(in_shape) == 4, f"input shape {in_shape} should be 4-D (N, C, H, W)")
    block = int(ctx.attr("blocksize", 0))
    ctx.check(block >= 1, f"blocksize {block} must be positive")
    mode = ctx.attr("mode", "DCR") or "DCR"
    if mode not in ("DCR", "CRD"):
        raise ctx.unsupported(f"mode '{mode}' is not supported (expected DCR or CRD)")
    return in_shape, block, mode


@converts("DepthToSpace")
def convert_depth_to_space(ctx: NodeContext) -> Sequence[Result]:
    (n, c, h, w), b, mode = _blocks(ctx)
    ctx.check(c % (b * b) == 0, f"channels {c} are not divisible by blocksize^2 = {b * b}")
    out = [n, c // (b * b), h * b, w * b]
    if mode == "DCR":
        return [_rearrange(ctx, [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2], out)]
    return [_rearrange(ctx, [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3], out)]


@converts("SpaceToDepth")
def convert_space_to_depth(ctx: NodeContext) -> Sequence[Result]:
    (n, c, h, w), b, mode = _blocks(ctx)
    ctx.check(h % b == 0 and w % b == 0, f"spatial size {h}x{w} is not divisible by blocksize {b}")
    out = [n, c * b * b, h // b, w // b]
    perm = [0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4]
    return [_rearrange(ctx, [n, c, h // b, b, w // b, b], perm, out)]


# ----------------------------------------------------------------------------
# GatherElements.


@converts("GatherElements")
def convert_gather_elements(ctx: NodeContext) -> Sequence[Result]:
    if not ctx.is_constant(1):  # run-time indices: wpk.take_along_axis (index.py)
        return [emit_take_along_axis(ctx)]
    in_shape = ctx.input_shape(0)
    indices = np.asarray(ctx.constant(1, "indices")).astype(np.int64)
    rank = len(in_shape)
    ctx.check(indices.ndim == rank, f"indices of shape {list(indices.shape)} should have rank {rank}")
    axis = ctx.compute(shapes.normalize_axis, int(ctx.attr("axis", 0)), rank)
    dim = in_shape[axis]
    ctx.check(
        bool(np.all((indices >= -dim) & (indices < dim))), f"an index lies outside [-{dim}, {dim}) on axis {axis}"
    )
    ctx.check(
        all(i <= d for a, (i, d) in enumerate(zip(indices.shape, in_shape, strict=True)) if a != axis),
        f"indices of shape {list(indices.shape)} are larger than the input {in_shape} outside axis {axis}",
    )
    indices = np.where(indices < 0, indices + dim, indices)
    data = _data(ctx)
    if data is not None:
        grid = list(np.indices(indices.shape, sparse=True))
        grid[axis] = indices
        return [data[tuple(grid)]]
    no_empty(ctx, list(indices.shape))
    x = ctx.tensor(0)
    shape = ctx.output_shape(0, lambda: list(indices.shape))
    return [ctx.emit(wpk.GatherElementsOp, shape, x, ints(indices), axis)]
