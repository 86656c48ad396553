"""Static shape arithmetic for the ONNX ops the importer handles.

Pure functions on lists of ints. They raise `ValueError` with a short reason;
the caller turns it into a `ShapeError` that names the ONNX node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

AUTO_PAD_MODES = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


def normalize_axis(axis: int, rank: int) -> int:
    """`axis` in [-rank, rank) -> [0, rank)."""
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def normalize_axes(axes: Sequence[int], rank: int) -> list[int]:
    """Non-negative, sorted, duplicate-free axes."""
    normalized = [normalize_axis(int(a), rank) for a in axes]
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"axes {list(axes)} repeat a dimension")
    return sorted(normalized)


def broadcast(*shapes: Sequence[int]) -> list[int]:
    """numpy (multidirectional) broadcasting."""
    try:
        return [int(d) for d in np.broadcast_shapes(*(tuple(s) for s in shapes))]
    except ValueError:
        raise ValueError(f"shapes {[list(s) for s in shapes]} do not broadcast") from None


def matmul_shape(lhs: Sequence[int], rhs: Sequence[int]) -> list[int]:
    """Result shape of numpy.matmul (1-D operands are promoted, then the added dim dropped)."""
    if not lhs or not rhs:
        raise ValueError("MatMul operands must have rank >= 1")
    a = [1, *lhs] if len(lhs) == 1 else list(lhs)
    b = [*rhs, 1] if len(rhs) == 1 else list(rhs)
    if a[-1] != b[-2]:
        raise ValueError(f"inner dimensions differ: {list(lhs)} @ {list(rhs)}")
    batch = broadcast(a[:-2], b[:-2])
    result = [*batch, a[-2], b[-1]]
    if len(rhs) == 1:
        result.pop(-1)
    if len(lhs) == 1:
        result.pop(-1 if len(rhs) == 1 else -2)
    return result


def effective_kernel(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


def same_pads(
    mode: str,
    sizes: Sequence[int],
    kernels: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[int]:
    """Explicit pads [begin..., end...] for auto_pad SAME_UPPER / SAME_LOWER.

    The output size is ceil(size / stride); SAME_UPPER puts the odd extra pad at the end.
    """
    begins, ends = [], []
    for size, kernel, stride, dilation in zip(sizes, kernels, strides, dilations, strict=True):
        out = math.ceil(size / stride)
        total = max(0, (out - 1) * stride + effective_kernel(kernel, dilation) - size)
        small, large = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else large)
        ends.append(large if mode == "SAME_UPPER" else small)
    return begins + ends


def explicit_pads(
    auto_pad: str,
    pads: Sequence[int] | None,
    sizes: Sequence[int],
    kernels: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> list[int]:
    """The [begin..., end...] pads a Conv/Pool really uses, whatever auto_pad says."""
    rank = len(sizes)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return same_pads(auto_pad, sizes, kernels, strides, dilations)
    if auto_pad == "VALID" or pads is None:
        return [0] * (2 * rank)
    if len(pads) != 2 * rank:
        raise ValueError(f"pads {list(pads)} should have {2 * rank} values")
    if any(p < 0 for p in pads):
        raise ValueError(f"pads {list(pads)} must not be negative")
    return [int(p) for p in pads]


def window_output_size(
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    pad_begin: int,
    pad_end: int,
    ceil_mode: bool = False,
) -> int:
    """Output length of a sliding window (Conv/MaxPool/AveragePool) along one dimension.

    With ceil_mode, a last window that would start inside the end padding is dropped
    (the rule of onnxruntime and PyTorch).
    """
    span = size + pad_begin + pad_end - effective_kernel(kernel, dilation)
    if span < 0:
        raise ValueError(
            f"window {effective_kernel(kernel, dilation)} is larger than the padded input {size + pad_begin + pad_end}"
        )
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def window_output_shape(
    input_shape: Sequence[int],
    channels: int,
    kernels: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    pads: Sequence[int],
    ceil_mode: bool = False,
) -> list[int]:
    """NCHW output shape of a 2-D Conv/Pool with explicit [top, left, bottom, right] pads."""
    spatial = input_shape[2:]
    rank = len(spatial)
    out = [
        window_output_size(spatial[i], kernels[i], strides[i], dilations[i], pads[i], pads[i + rank], ceil_mode)
        for i in range(rank)
    ]
    return [input_shape[0], channels, *out]


def reshape_target(input_shape: Sequence[int], target: Sequence[int], allowzero: bool) -> list[int]:
    """ONNX Reshape: 0 copies the input dimension (unless allowzero), one -1 is inferred."""
    total = math.prod(input_shape)
    result = []
    for i, dim in enumerate(int(d) for d in target):
        if dim == 0 and not allowzero:
            if i >= len(input_shape):
                raise ValueError(f"shape {list(target)} copies dimension {i} the input lacks")
            dim = input_shape[i]
        elif dim < -1:
            raise ValueError(f"shape {list(target)} has a negative dimension")
        result.append(dim)
    if result.count(-1) > 1:
        raise ValueError(f"shape {list(target)} has more than one -1")
    if -1 in result:
        known = math.prod(d for d in result if d != -1)
        if known == 0 or total % known:
            raise ValueError(f"cannot reshape {list(input_shape)} to {list(target)}")
        result[result.index(-1)] = total // known
    if math.prod(result) != total:
        raise ValueError(f"cannot reshape {list(input_shape)} ({total} elements) to {list(target)}")
    return result


def flatten_shape(input_shape: Sequence[int], axis: int) -> list[int]:
    """ONNX Flatten with a normalized axis in [0, rank]."""
    return [math.prod(input_shape[:axis]), math.prod(input_shape[axis:])]


def squeeze_shape(input_shape: Sequence[int], axes: Sequence[int] | None) -> list[int]:
    if axes is None:
        return [d for d in input_shape if d != 1]
    dropped = set(normalize_axes(axes, len(input_shape)))
    for axis in dropped:
        if input_shape[axis] != 1:
            raise ValueError(f"cannot squeeze dimension {axis} of size {input_shape[axis]}")
    return [d for i, d in enumerate(input_shape) if i not in dropped]


def unsqueeze_shape(input_shape: Sequence[int], axes: Sequence[int]) -> list[int]:
    rank = len(input_shape) + len(axes)
    inserted = set(normalize_axes(axes, rank))
    rest = iter(input_shape)
    return [1 if i in inserted else next(rest) for i in range(rank)]


def concat_shape(shapes: Sequence[Sequence[int]], axis: int) -> list[int]:
    first = list(shapes[0])
    for shape in shapes[1:]:
        if len(shape) != len(first) or any(
            a != b for i, (a, b) in enumerate(zip(shape, first, strict=True)) if i != axis
        ):
            raise ValueError(f"shapes {[list(s) for s in shapes]} differ outside axis {axis}")
    first[axis] = sum(s[axis] for s in shapes)
    return first


def reduce_shape(input_shape: Sequence[int], axes: Sequence[int], keepdims: bool) -> list[int]:
    reduced = set(axes)
    if keepdims:
        return [1 if i in reduced else d for i, d in enumerate(input_shape)]
    return [d for i, d in enumerate(input_shape) if i not in reduced]


def pad_shape(input_shape: Sequence[int], pads: Sequence[int]) -> list[int]:
    rank = len(input_shape)
    result = [d + pads[i] + pads[i + rank] for i, d in enumerate(input_shape)]
    if any(d < 0 for d in result):
        raise ValueError(f"pads {list(pads)} crop {list(input_shape)} below zero")
    return result
