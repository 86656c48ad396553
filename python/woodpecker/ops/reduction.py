"""Reductions along axes: softmax (one axis) and reduce_mean (sorted axes, keepdims)."""

from __future__ import annotations

import itertools

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import axis_in_range, fail, fmt


def softmax_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    axis_in_range(args.attr("axis"), len(x))
    return x


def evaluate_softmax(args: OpArgs[np.ndarray]) -> np.ndarray:
    x, axis = args["input"], args.attr("axis")
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def reduce_mean_shape(args: OpArgs[Shape]) -> Shape:
    """Empty `axes` reduce nothing (the importer writes every axis for ONNX's 'all axes')."""
    x = list(args["input"])
    axes = list(args.attr("axes"))
    if any(not 0 <= a < len(x) for a in axes) or any(a >= b for a, b in itertools.pairwise(axes)):
        fail(f"attribute 'axes' {fmt(axes)} must be sorted, unique and in [0, {len(x) - 1}]")
    if args.attr("keepdims"):
        return [1 if i in axes else d for i, d in enumerate(x)]
    return [d for i, d in enumerate(x) if i not in axes]


def evaluate_reduce_mean(args: OpArgs[np.ndarray]) -> np.ndarray:
    return np.mean(args["input"], axis=tuple(args.attr("axes")), keepdims=bool(args.attr("keepdims")))


register(OpSemantics(wpk.SoftmaxOp, shape=softmax_shape, evaluate=evaluate_softmax))
register(OpSemantics(wpk.ReduceMeanOp, shape=reduce_mean_shape, evaluate=evaluate_reduce_mean))
