"""Reductions: softmax, log_softmax, hardmax (one axis), the reduce_* family (sorted axes,
keepdims) and global_max_pool.

The reduce_* ops are one family: `REDUCE_KINDS` maps each op class to its `ReduceKind` (the
numpy reference here; lowering/reduction.py lowers every kind through one function keyed by
the kind's name).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import axis_in_range, fail, fmt


def one_axis_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    axis_in_range(args.attr("axis"), len(x))
    return x


def evaluate_softmax(args: OpArgs[np.ndarray]) -> np.ndarray:
    x, axis = args["input"], args.attr("axis")
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def evaluate_log_softmax(args: OpArgs[np.ndarray]) -> np.ndarray:
    x, axis = args["input"], args.attr("axis")
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def evaluate_hardmax(args: OpArgs[np.ndarray]) -> np.ndarray:
    """1 at the first index of the maximum along `axis` (ONNX Hardmax)."""
    x, axis = args["input"], args.attr("axis")
    first = np.expand_dims(np.argmax(x, axis=axis), axis)
    out = np.zeros_like(x)
    np.put_along_axis(out, first, 1.0, axis=axis)
    return out


def reduce_shape(args: OpArgs[Shape]) -> Shape:
    """Empty `axes` reduce nothing (the importer writes every axis for ONNX's 'all axes')."""
    x = list(args["input"])
    axes = list(args.attr("axes"))
    if any(not 0 <= a < len(x) for a in axes) or any(a >= b for a, b in itertools.pairwise(axes)):
        fail(f"attribute 'axes' {fmt(axes)} must be sorted, unique and in [0, {len(x) - 1}]")
    if args.attr("keepdims"):
        return [1 if i in axes else d for i, d in enumerate(x)]
    return [d for i, d in enumerate(x) if i not in axes]


def _log_sum_exp(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    peak = np.max(x, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


NumpyReduce = Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]


@dataclass(frozen=True)
class ReduceKind:
    """One reduce_* op: `name` keys its lowering; `numpy(x, axes, keepdims)` is its value."""

    op: wpk.OpClass
    name: str
    numpy: NumpyReduce


REDUCE_KINDS: dict[wpk.OpClass, ReduceKind] = {
    k.op: k
    for k in (
        ReduceKind(wpk.ReduceMeanOp, "mean", lambda x, a, k: np.mean(x, axis=a, keepdims=k)),
        ReduceKind(wpk.ReduceSumOp, "sum", lambda x, a, k: np.sum(x, axis=a, keepdims=k)),
        ReduceKind(wpk.ReduceMaxOp, "max", lambda x, a, k: np.max(x, axis=a, keepdims=k)),
        ReduceKind(wpk.ReduceMinOp, "min", lambda x, a, k: np.min(x, axis=a, keepdims=k)),
        ReduceKind(wpk.ReduceProdOp, "prod", lambda x, a, k: np.prod(x, axis=a, keepdims=k)),
        ReduceKind(wpk.ReduceL1Op, "l1", lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k)),
        ReduceKind(wpk.ReduceL2Op, "l2", lambda x, a, k: np.sqrt(np.sum(x * x, axis=a, keepdims=k))),
        ReduceKind(wpk.ReduceSumSquareOp, "sum_square", lambda x, a, k: np.sum(x * x, axis=a, keepdims=k)),
        ReduceKind(wpk.ReduceLogSumOp, "log_sum", lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k))),
        ReduceKind(wpk.ReduceLogSumExpOp, "log_sum_exp", _log_sum_exp),
    )
}


def _reduce_evaluator(kind: ReduceKind) -> Callable[[OpArgs[np.ndarray]], np.ndarray]:
    def evaluate(args: OpArgs[np.ndarray]) -> np.ndarray:
        x, axes = args["input"], tuple(args.attr("axes"))
        keepdims = bool(args.attr("keepdims"))
        if not axes:
            return np.array(x, copy=True)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.asarray(kind.numpy(x, axes, keepdims))

    return evaluate


def global_max_pool_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if len(x) < 3:
        fail(f"input must be at least 3-D (N, C, spatial...), but has rank {len(x)}")
    return [x[0], x[1]] + [1] * (len(x) - 2)


def evaluate_global_max_pool(args: OpArgs[np.ndarray]) -> np.ndarray:
    x = args["input"]
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


register(OpSemantics(wpk.SoftmaxOp, shape=one_axis_shape, evaluate=evaluate_softmax))
register(OpSemantics(wpk.LogSoftmaxOp, shape=one_axis_shape, evaluate=evaluate_log_softmax))
register(OpSemantics(wpk.HardmaxOp, shape=one_axis_shape, evaluate=evaluate_hardmax))
for _kind in REDUCE_KINDS.values():
    register(OpSemantics(_kind.op, shape=reduce_shape, evaluate=_reduce_evaluator(_kind)))
register(OpSemantics(wpk.GlobalMaxPoolOp, shape=global_max_pool_shape, evaluate=evaluate_global_max_pool))
