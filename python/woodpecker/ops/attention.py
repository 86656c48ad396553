"""Attention-family ops: matmul_transposed (a matmul reading its right operand transposed) and
attention (softmax(scale * q k^T + mask) v, made by wpk-fuse-attention)."""

from __future__ import annotations

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.matmul import matmul_shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import fail, fmt


def swap_last_two(shape: Shape) -> Shape:
    return [*shape[:-2], shape[-1], shape[-2]]


def matmul_transposed_shape(args: OpArgs[Shape]) -> Shape:
    a, b = list(args["lhs"]), list(args["rhs"])
    if len(a) < 2 or len(b) < 2:
        fail(f"operands must have rank >= 2, got {fmt(a)} and {fmt(b)}")
    return matmul_shape(OpArgs({"lhs": a, "rhs": swap_last_two(b)}, {}))


def evaluate_matmul_transposed(args: OpArgs[np.ndarray]) -> np.ndarray:
    return np.matmul(args["lhs"], np.swapaxes(args["rhs"], -1, -2))


register(OpSemantics(wpk.MatMulTransposedOp, shape=matmul_transposed_shape, evaluate=evaluate_matmul_transposed))


def attention_shape(args: OpArgs[Shape]) -> Shape:
    """q [B, H, S, D], k [B, H, T, D], v [B, H, T, E] -> [B, H, S, E]; the mask broadcasts to [B, H, S, T]."""
    q, k, v = list(args["q"]), list(args["k"]), list(args["v"])
    if len(q) != 4 or len(k) != 4 or len(v) != 4:
        fail(f"q, k and v must have rank 4 ([B, H, S, D]), got {fmt(q)}, {fmt(k)} and {fmt(v)}")
    if q[:2] != k[:2] or q[:2] != v[:2]:
        fail(f"q, k and v must share [B, H], got {fmt(q)}, {fmt(k)} and {fmt(v)}")
    if q[3] != k[3]:
        fail(f"q and k must share the head dim, got {fmt(q)} and {fmt(k)}")
    if k[2] != v[2]:
        fail(f"k and v must have as many keys, got {fmt(k)} and {fmt(v)}")
    scores = [*q[:3], k[2]]
    mask = args.get("mask")
    if mask is not None:
        mask = list(mask)
        fits = len(mask) <= 4 and all(m in (1, s) for m, s in zip(mask[::-1], scores[::-1], strict=False))
        if not fits:
            fail(f"mask {fmt(mask)} does not broadcast to the scores {fmt(scores)}")
    return [*q[:3], v[3]]


def evaluate_attention(args: OpArgs[np.ndarray]) -> np.ndarray:
    """softmax(scale * q k^T + mask) v in float64."""
    q, k, v = (np.asarray(args[n], dtype=np.float64) for n in ("q", "k", "v"))
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * float(args.attr("scale"))
    mask = args.get("mask")
    if mask is not None:
        scores = scores + np.asarray(mask, dtype=np.float64)
    exps = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return np.matmul(exps / exps.sum(axis=-1, keepdims=True), v)


register(OpSemantics(wpk.AttentionOp, shape=attention_shape, evaluate=evaluate_attention))
