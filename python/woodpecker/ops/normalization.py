"""Normalizations: layer_norm, instance_norm, group_norm and lrn (ONNX LayerNormalization,
InstanceNormalization, GroupNormalization, LRN); statistics in float64, variance biased."""

from __future__ import annotations

import math

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import axis_in_range, broadcast_shapes, fail, fmt


def normalize(x: np.ndarray, axes: tuple[int, ...], epsilon: float) -> np.ndarray:
    """(x - mean) / sqrt(var + epsilon) over `axes`."""
    mean = x.mean(axis=axes, keepdims=True)
    var = np.square(x - mean).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon)


def _layer_norm_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    axis = axis_in_range(args.attr("axis"), len(x))
    normalized = x[axis:]
    for name in ("scale", "bias"):
        s = args.get(name)
        if s is None:
            continue
        if len(s) > len(normalized) or broadcast_shapes(s, normalized) != normalized:
            fail(f"operand '{name}' shape {fmt(s)} must broadcast to the normalized shape {fmt(normalized)}")
    return x


def _layer_norm(args: OpArgs[np.ndarray]) -> np.ndarray:
    x, axis = args["input"], args.attr("axis")
    out = normalize(x, tuple(range(axis, x.ndim)), args.attr("epsilon")) * args["scale"]
    bias = args.get("bias")
    return out if bias is None else out + bias


def _per_channel_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if len(x) < 3:
        fail(f"input must be at least 3-D (N, C, spatial...), but has rank {len(x)}")
    for name in ("scale", "bias"):
        if list(args[name]) != [x[1]]:
            fail(f"operand '{name}' shape {fmt(args[name])} must be [{x[1]}] (one value per channel)")
    return x


def _channel(v: np.ndarray, rank: int) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape([1, -1] + [1] * (rank - 2))


def _instance_norm(args: OpArgs[np.ndarray]) -> np.ndarray:
    x = args["input"]
    out = normalize(x, tuple(range(2, x.ndim)), args.attr("epsilon"))
    return out * _channel(args["scale"], x.ndim) + _channel(args["bias"], x.ndim)


def _group_norm_shape(args: OpArgs[Shape]) -> Shape:
    x = _per_channel_shape(args)
    groups = args.attr("num_groups")
    if groups < 1 or x[1] % groups:
        fail(f"attribute 'num_groups' = {groups} must be positive and divide the {x[1]} channels")
    return x


def _group_norm(args: OpArgs[np.ndarray]) -> np.ndarray:
    x, groups = args["input"], args.attr("num_groups")
    grouped = x.reshape(x.shape[0], groups, -1)
    out = normalize(grouped, (2,), args.attr("epsilon")).reshape(x.shape)
    return out * _channel(args["scale"], x.ndim) + _channel(args["bias"], x.ndim)


def _lrn_shape(args: OpArgs[Shape]) -> Shape:
    x = list(args["input"])
    if len(x) < 2:
        fail(f"input must be at least 2-D (N, C, ...), but has rank {len(x)}")
    if args.attr("size") < 1:
        fail(f"attribute 'size' = {args.attr('size')} must be positive")
    return x


def lrn_window(size: int) -> tuple[int, int]:
    """Channels before and after c in the LRN sum (ONNX: floor and ceil of (size - 1) / 2)."""
    return (size - 1) // 2, math.ceil((size - 1) / 2)


def _lrn(args: OpArgs[np.ndarray]) -> np.ndarray:
    x = args["input"]
    size = args.attr("size")
    before, after = lrn_window(size)
    sq = np.square(x)
    channels = x.shape[1]
    total = np.zeros_like(x)
    for c in range(channels):
        lo, hi = max(0, c - before), min(channels - 1, c + after)
        total[:, c] = sq[:, lo : hi + 1].sum(axis=1)
    return x / (args.attr("bias") + args.attr("alpha") / size * total) ** args.attr("beta")


register(OpSemantics(wpk.LayerNormOp, shape=_layer_norm_shape, evaluate=_layer_norm))
register(OpSemantics(wpk.InstanceNormOp, shape=_per_channel_shape, evaluate=_instance_norm))
register(OpSemantics(wpk.GroupNormOp, shape=_group_norm_shape, evaluate=_group_norm))
register(OpSemantics(wpk.LrnOp, shape=_lrn_shape, evaluate=_lrn))
