"""`wpk-fuse-layernorm`: the decomposed LayerNorm of older exporters into one `wpk.layer_norm`.

Matched (ONNX form, as the importer writes it; Pow(d, 2) imports as mul(d, d)):

    m = ReduceMean(x, axes = [axis .. rank-1], keepdims)   d = Sub(x, m)
    v = ReduceMean(Pow(d, 2) | Mul(d, d), same axes)       s = Sqrt(Add(v, eps))
    y = Div(d, s) [then Mul(y, scale)] [then Add(., bias)]

with `eps` a one-element constant, every intermediate used only inside the pattern, and scale
and bias broadcasting to the normalized (trailing) dims without growing the result. The root is
the Div: a pattern without the Mul gets a scale of ones. The result is
`wpk.layer_norm(x, scale, bias?) {axis, epsilon}` (ops/normalization.py), one kernel.
"""

from __future__ import annotations

import numpy as np
from mlir import ir
from mlir.rewrite import PatternRewriter

from woodpecker.dialect import attr_bool, attr_ints, create_op, f32_attr, i64_attr
from woodpecker.graph.context import GraphContext
from woodpecker.graph.rewrite import (
    NO_MATCH,
    MatchAndRewrite,
    Pattern,
    apply_patterns,
    erase_dead_ops,
    fused_location,
    location_name,
    only_user,
    producer_named,
    shape,
    used_only_by,
)

PASS_NAME = "wpk-fuse-layernorm"


def _mean_axis(mean: ir.Operation, rank: int) -> int | None:
    """The first axis of a keepdims reduce_mean over trailing dims [axis, rank), else None."""
    axes = attr_ints(mean, "axes")
    if not attr_bool(mean, "keepdims") or not axes or axes != list(range(axes[0], rank)):
        return None
    return axes[0]


def _other(op: ir.Operation, value: ir.Value) -> ir.Value | None:
    """The operand of binary `op` that is not `value` (None when both or neither are)."""
    a, b = op.operands[0], op.operands[1]
    if a == value and b != value:
        return b
    if b == value and a != value:
        return a
    return None


def _is_square_of(op: ir.Operation | None, d: ir.Value, graph: GraphContext) -> bool:
    if op is None:
        return False
    if op.name == "wpk.mul":
        return op.operands[0] == d and op.operands[1] == d
    if op.name == "wpk.pow" and op.operands[0] == d:
        exponent = graph.array_of(op.operands[1])
        return exponent is not None and exponent.size == 1 and float(exponent.reshape(-1)[0]) == 2.0
    return False


def _affine_operand(op: ir.Operation | None, value: ir.Value, name: str, normalized: list[int]) -> ir.Value | None:
    """The other operand of `op` (a wpk.<name> using `value`) when it broadcasts to the
    normalized dims and the result keeps `value`'s shape."""
    if op is None or op.name != f"wpk.{name}" or shape(op.results[0]) != shape(value):
        return None
    other = _other(op, value)
    if other is None:
        return None
    s = shape(other)
    if len(s) > len(normalized) or any(d not in (1, n) for d, n in zip(s[::-1], normalized[::-1], strict=False)):
        return None
    return other


def _uses_only_in(value: ir.Value, ops: list[ir.Operation]) -> bool:
    return all(any(use.owner.operation == op for op in ops) for use in value.uses)


def fuse_pattern(graph: GraphContext) -> MatchAndRewrite:
    def fuse(div: ir.Operation, rewriter: PatternRewriter) -> bool | None:
        d, s = div.operands[0], div.operands[1]
        sub = producer_named(d, "wpk.sub")
        sqrt = producer_named(s, "wpk.sqrt")
        if sub is None or sqrt is None or not used_only_by(s, div):
            return NO_MATCH
        x, m = sub.operands[0], sub.operands[1]
        mean = producer_named(m, "wpk.reduce_mean")
        rank = len(shape(x))
        if mean is None or mean.operands[0] != x or not used_only_by(m, sub) or shape(d) != shape(x):
            return NO_MATCH
        axis = _mean_axis(mean, rank)
        add_eps = producer_named(sqrt.operands[0], "wpk.add")
        if axis is None or add_eps is None or not used_only_by(sqrt.operands[0], sqrt):
            return NO_MATCH
        var = next((v for v in add_eps.operands if producer_named(v, "wpk.reduce_mean") is not None), None)
        if var is None:
            return NO_MATCH
        eps = graph.array_of(_other(add_eps, var)) if _other(add_eps, var) is not None else None
        var_mean = producer_named(var, "wpk.reduce_mean")
        if eps is None or eps.size != 1 or var_mean is None or not used_only_by(var, add_eps):
            return NO_MATCH
        square = producer_named(var_mean.operands[0], ("wpk.mul", "wpk.pow"))
        if _mean_axis(var_mean, rank) != axis or not _is_square_of(square, d, graph):
            return NO_MATCH
        if not used_only_by(var_mean.operands[0], var_mean) or not _uses_only_in(d, [square, div]):
            return NO_MATCH

        normalized = shape(x)[axis:]
        last, matched = div, [mean, sub, square, var_mean, add_eps, sqrt, div]
        scale = _affine_operand(only_user(div.results[0]), div.results[0], "mul", normalized)
        bias = None
        if scale is not None:
            last = only_user(div.results[0])
            matched.append(last)
            bias = _affine_operand(only_user(last.results[0]), last.results[0], "add", normalized)
            if bias is not None:
                last = only_user(last.results[0])
                matched.append(last)
        with ir.InsertionPoint(last):  # after every operand (a scale or bias may come late)
            if scale is None:
                scale = graph.constant(np.ones(normalized[-1:] or [1]), f"{location_name(div)}.scale", div.location)
            attrs = {"axis": i64_attr(axis), "epsilon": f32_attr(float(eps.reshape(-1)[0]))}
            operands = [x, scale] + ([bias] if bias is not None else [])
            new = create_op("layer_norm", operands, [last.results[0].type], attrs, fused_location(*matched))
        rewriter.replace_op(last, new)
        return None

    return fuse


def patterns(graph: GraphContext) -> list[Pattern]:
    return [Pattern("wpk.div", fuse_pattern(graph))]


def fuse_layernorm(root: ir.Operation, graph: GraphContext) -> None:
    """The pass: every decomposed LayerNorm into one wpk.layer_norm, then the dead chain erased."""
    apply_patterns(root, patterns(graph))
    erase_dead_ops(root)
