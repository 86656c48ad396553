"""Numpy semantics of every `wpk` op, for constant folding.

`evaluate(op, arrays)` computes the result of `op` from the arrays of its
operands (in operand order) in float64 and returns it as float32 in the shape
of the op's result type. The op's attributes and result type are trusted (the
module passed wpk-verify or came from the importer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from mlir import ir

from woodpecker.dialect import attr_bool, attr_float, attr_int, attr_ints, attr_str
from woodpecker.dialect.fused import FUSED_LAYOUTS, segment_sizes, unpack
from woodpecker.dialect.steps import BINARY_OP_STEPS, UNARY_OP_STEPS, Step, apply_step, apply_steps, unary_op_step
from woodpecker.graph.rewrite import shape
from woodpecker.lowering.pooling import Window, avg_pool_divisor

Arrays = Sequence[np.ndarray]
Evaluator = Callable[[ir.Operation, Arrays], np.ndarray]


class NotFoldable(ValueError):
    """The op has no numpy evaluation."""


def _out_shape(op: ir.Operation) -> list[int]:
    return shape(op.results[0])


# ----------------------------------------------------------------------------
# Anchors.


def conv2d(op: ir.Operation, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    strides, dilations = attr_ints(op, "strides"), attr_ints(op, "dilations")
    pads, groups = attr_ints(op, "pads"), attr_int(op, "groups")
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, f, oh, ow = _out_shape(op)
    _, cg, kh, kw = w.shape
    fg = f // groups
    out = np.zeros((n, f, oh, ow))
    for g in range(groups):
        xs, ws = x[:, g * cg : (g + 1) * cg], w[g * fg : (g + 1) * fg]
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dilations[0], j * dilations[1]
                tap = xs[
                    :,
                    :,
                    r0 : r0 + (oh - 1) * strides[0] + 1 : strides[0],
                    c0 : c0 + (ow - 1) * strides[1] + 1 : strides[1],
                ]
                out[:, g * fg : (g + 1) * fg] += np.einsum("nchw,fc->nfhw", tap, ws[:, :, i, j])
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def gemm(op: ir.Operation, a: np.ndarray, b: np.ndarray, c: np.ndarray | None) -> np.ndarray:
    a = a.T if attr_bool(op, "trans_a") else a
    b = b.T if attr_bool(op, "trans_b") else b
    out = attr_float(op, "alpha") * (a @ b)
    if c is not None:
        out = out + attr_float(op, "beta") * c
    return out


def _conv2d(op: ir.Operation, a: Arrays) -> np.ndarray:
    return conv2d(op, a[0], a[1], a[2] if len(a) > 2 else None)


def _gemm(op: ir.Operation, a: Arrays) -> np.ndarray:
    return gemm(op, a[0], a[1], a[2] if len(a) > 2 else None)


def _fused(op: ir.Operation, arrays: Arrays) -> np.ndarray:
    """Fused kernels: the anchor's value, then the steps."""
    layout = FUSED_LAYOUTS[op.name]
    steps = unpack(op).steps
    values = iter(arrays)
    present = {
        name: (next(values) if size else None)
        for name, size in zip(layout.operand_names, segment_sizes(op, len(arrays)), strict=True)
    }
    sides = [present[n] for n in layout.operand_names[len(layout.anchor) :] if present[n] is not None]
    if op.name == "wpk.fused_conv2d":
        value = conv2d(op, present["input"], present["filter"], present["bias"])
    elif op.name == "wpk.fused_gemm":
        value = gemm(op, present["a"], present["b"], present["c"])
    elif op.name == "wpk.fused_matmul":
        value = np.matmul(present["lhs"], present["rhs"])
    else:
        value = present["input"]
    return apply_steps(value, steps, sides)


# ----------------------------------------------------------------------------
# Elementwise and normalization.


def _binary(op: ir.Operation, a: Arrays) -> np.ndarray:
    return apply_step(Step(BINARY_OP_STEPS[op.name][0]), a[0], a[1])


def _unary(op: ir.Operation, a: Arrays) -> np.ndarray:
    return apply_step(unary_op_step(op), a[0], None)


def _channel(param: np.ndarray, rank: int) -> np.ndarray:
    return param.reshape([-1] + [1] * (rank - 2))


def _batch_norm(op: ir.Operation, a: Arrays) -> np.ndarray:
    x, scale, bias, mean, var = a
    eps = attr_float(op, "epsilon")
    rank = x.ndim
    normalized = (x - _channel(mean, rank)) / np.sqrt(_channel(var, rank) + eps)
    return normalized * _channel(scale, rank) + _channel(bias, rank)


# ----------------------------------------------------------------------------
# Pooling and reductions.


def _pool(op: ir.Operation, a: Arrays) -> np.ndarray:
    x = a[0]
    kernel, strides = attr_ints(op, "kernel_shape"), attr_ints(op, "strides")
    pads, dilations = attr_ints(op, "pads"), attr_ints(op, "dilations")
    out = _out_shape(op)
    windows = [Window(x.shape[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[i + 2]) for i in range(2)]
    is_max = op.name == "wpk.max_pool"
    fill = -math.inf if is_max else 0.0
    high = [w.pad_end + w.overhang(out[2 + i]) for i, w in enumerate(windows)]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], high[0]), (pads[1], high[1])), constant_values=fill)
    taps = []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            r0, c0 = i * dilations[0], j * dilations[1]
            taps.append(
                xp[
                    :,
                    :,
                    r0 : r0 + (out[2] - 1) * strides[0] + 1 : strides[0],
                    c0 : c0 + (out[3] - 1) * strides[1] + 1 : strides[1],
                ]
            )
    stacked = np.stack(taps)
    if is_max:
        return stacked.max(axis=0)
    divisor = avg_pool_divisor(windows[0], windows[1], out[2], out[3], attr_bool(op, "count_include_pad"))
    return stacked.sum(axis=0) / divisor


def _global_avg_pool(op: ir.Operation, a: Arrays) -> np.ndarray:
    return a[0].mean(axis=tuple(range(2, a[0].ndim)), keepdims=True)


def _softmax(op: ir.Operation, a: Arrays) -> np.ndarray:
    axis = attr_int(op, "axis")
    e = np.exp(a[0] - a[0].max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _reduce_mean(op: ir.Operation, a: Arrays) -> np.ndarray:
    axes = attr_ints(op, "axes")
    if not axes and list(a[0].shape) == _out_shape(op):
        return a[0]
    return a[0].mean(axis=tuple(axes) if axes else None, keepdims=attr_bool(op, "keepdims"))


# ----------------------------------------------------------------------------
# Data movement.


def _reshape(op: ir.Operation, a: Arrays) -> np.ndarray:
    return a[0].reshape(_out_shape(op))


def _transpose(op: ir.Operation, a: Arrays) -> np.ndarray:
    return np.transpose(a[0], attr_ints(op, "perm"))


def _concat(op: ir.Operation, a: Arrays) -> np.ndarray:
    return np.concatenate(list(a), axis=attr_int(op, "axis"))


_PAD_MODES = {"reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _pad(op: ir.Operation, a: Arrays) -> np.ndarray:
    x, pads, mode = a[0], attr_ints(op, "pads"), attr_str(op, "mode")
    rank = x.ndim
    low, high = pads[:rank], pads[rank:]
    crop = tuple(slice(max(0, -lo), x.shape[d] - max(0, -hi)) for d, (lo, hi) in enumerate(zip(low, high, strict=True)))
    x = x[crop]
    widths = [(max(0, lo), max(0, hi)) for lo, hi in zip(low, high, strict=True)]
    if mode == "constant":
        return np.pad(x, widths, constant_values=attr_float(op, "value"))
    if mode not in _PAD_MODES:
        raise NotFoldable(f"pad mode '{mode}'")
    return np.pad(x, widths, mode=_PAD_MODES[mode])


EVALUATORS: dict[str, Evaluator] = {
    "wpk.conv2d": _conv2d,
    "wpk.matmul": lambda op, a: np.matmul(a[0], a[1]),
    "wpk.gemm": _gemm,
    **{name: _binary for name in BINARY_OP_STEPS},
    **{name: _unary for name in UNARY_OP_STEPS},
    "wpk.batch_norm": _batch_norm,
    "wpk.max_pool": _pool,
    "wpk.avg_pool": _pool,
    "wpk.global_avg_pool": _global_avg_pool,
    "wpk.softmax": _softmax,
    "wpk.reduce_mean": _reduce_mean,
    "wpk.reshape": _reshape,
    "wpk.flatten": _reshape,
    "wpk.transpose": _transpose,
    "wpk.concat": _concat,
    "wpk.pad": _pad,
    **{name: _fused for name in FUSED_LAYOUTS},
}


def evaluate(op: ir.Operation, arrays: Arrays) -> np.ndarray:
    """The f32 result of `op` on operand arrays (computed in float64); raises NotFoldable."""
    evaluator = EVALUATORS.get(op.name)
    if evaluator is None:
        raise NotFoldable(f"no numpy evaluation for '{op.name}'")
    with np.errstate(all="ignore"):
        result = evaluator(op, [np.asarray(x, dtype=np.float64) for x in arrays])
    out = _out_shape(op)
    result = np.asarray(result, dtype=np.float64)
    if list(result.shape) != out:
        raise NotFoldable(f"numpy evaluation of '{op.name}' gave shape {list(result.shape)}, expected {out}")
    return result.astype(np.float32)
