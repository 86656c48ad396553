"""`wpk-fuse-attention`: the scaled dot-product attention chain of exported transformers into one
`wpk.attention`.

Matched (as the importer and wpk-fold-transpose leave it), rooted at the second matmul:

    s = matmul_transposed(q, k) | matmul(q, transpose(x, perm))   (perm[2] = 3: K^T, k from x)
    s = s * c | c * s | s / c                  (optional; c a one-element constant)
    s = s + mask | mask + s                     (optional; mask broadcasting to s, any producer)
    y = matmul(softmax(s, axis = 3), v)

with q, k, v of rank 4 sharing [B, H] and every intermediate used only by the next op. A
scale on q or on k before the first matmul (`q * c`, `q / c`, as some BERT exports split
1/sqrt(d) into two 1/d^(1/4) factors) folds into the op's scale when that product is used
only there. The result is `wpk.attention(q, k, v, mask?) {scale}` (ops/attention.py).

Not matched (left as they are): a causal mask applied with Where (GPT-2), a scale applied after
the mask, 3-D [B*H, S, D] heads, and any chain with an intermediate used elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.rewrite import PatternRewriter

from woodpecker.dialect import attr_int, create_op, f32_attr
from woodpecker.graph.context import GraphContext
from woodpecker.graph.fold_transpose import unswapped_perm
from woodpecker.graph.rewrite import (
    NO_MATCH,
    MatchAndRewrite,
    Pattern,
    apply_patterns,
    erase_dead_ops,
    fused_location,
    producer_named,
    shape,
    used_only_by,
)

PASS_NAME = "wpk-fuse-attention"


@dataclass
class Scores:
    """What the scores chain resolved to: the operands of the first matmul and the scale."""

    q: ir.Value
    k: ir.Value  # k itself, or what `k_perm` transposes into it
    k_perm: list[int] | None
    scale: float
    ops: list[ir.Operation]


def _scalar(graph: GraphContext, value: ir.Value) -> float | None:
    """The value of a one-element constant or weight, else None."""
    array = graph.array_of(value)
    if array is None or array.size != 1:
        return None
    return float(array.reshape(-1)[0])


def _scaled(graph: GraphContext, value: ir.Value, user: ir.Operation) -> tuple[ir.Value, float, ir.Operation] | None:
    """(x, c, op) when `value` is `x * c`, `c * x` or `x / c` (`x / c` gives 1 / c), used only
    by `user` and of `x`'s shape; else None."""
    op = producer_named(value, ("wpk.mul", "wpk.div"))
    if op is None or not used_only_by(value, user):
        return None
    a, b = op.operands[0], op.operands[1]
    candidates = [(a, b)] if op.name == "wpk.div" else [(a, b), (b, a)]
    for x, c in candidates:
        factor = _scalar(graph, c)
        if factor is None or shape(x) != shape(value) or (op.name == "wpk.div" and factor == 0.0):
            continue
        return x, (1.0 / factor if op.name == "wpk.div" else factor), op
    return None


def _unscaled(graph: GraphContext, value: ir.Value, user: ir.Operation) -> tuple[ir.Value, float, list[ir.Operation]]:
    """`value` without a constant factor folded into it (q * c -> q, c), if there is one."""
    found = _scaled(graph, value, user)
    if found is None:
        return value, 1.0, []
    x, factor, op = found
    return x, factor, [op]


def _first_matmul(graph: GraphContext, value: ir.Value, user: ir.Operation) -> Scores | None:
    """q k^T: a matmul_transposed(q, k), or a matmul of q and transpose(x, perm) with perm[2] = 3
    (then k is x transposed by perm with its last two entries exchanged, as wpk-fold-transpose
    does: x itself for [0, 1, 3, 2]). A constant factor on q, on k^T or on x, used only there,
    folds into the scale."""
    op = producer_named(value, ("wpk.matmul_transposed", "wpk.matmul"))
    if op is None or not used_only_by(value, user):
        return None
    q, q_scale, q_ops = _unscaled(graph, op.operands[0], op)
    k, k_scale, k_ops = _unscaled(graph, op.operands[1], op)
    ops = [*q_ops, *k_ops, op]
    perm: list[int] | None = None
    if op.name == "wpk.matmul":
        transpose = producer_named(k, "wpk.transpose")
        if transpose is None or not used_only_by(k, k_ops[0] if k_ops else op):
            return None
        perm = list(ir.DenseI64ArrayAttr(transpose.attributes["perm"]))
        if len(perm) != 4 or perm[2] != 3:
            return None
        perm = unswapped_perm(perm)
        k, inner_scale, inner_ops = _unscaled(graph, transpose.operands[0], transpose)
        k_scale *= inner_scale
        ops += [transpose, *inner_ops]
        if perm == list(range(4)):
            perm = None
    k_shape = shape(k) if perm is None else [shape(k)[p] for p in perm]
    if len(shape(q)) != 4 or len(k_shape) != 4 or shape(q)[:2] != k_shape[:2]:
        return None
    return Scores(q, k, perm, q_scale * k_scale, ops)


def _scores(graph: GraphContext, value: ir.Value, user: ir.Operation) -> Scores | None:
    """The scores chain ending in `value` (used by `user`): an optional constant scale on q k^T."""
    scaled = _scaled(graph, value, user)
    if scaled is None:
        return _first_matmul(graph, value, user)
    x, factor, op = scaled
    found = _first_matmul(graph, x, op)
    if found is None:
        return None
    return Scores(found.q, found.k, found.k_perm, found.scale * factor, [*found.ops, op])


def _masked_scores(
    graph: GraphContext, value: ir.Value, softmax: ir.Operation
) -> tuple[Scores, ir.Value | None] | None:
    """The softmax input: scores plus a mask (either operand order), or the scores alone."""
    add = producer_named(value, "wpk.add")
    if add is not None and used_only_by(value, softmax):
        a, b = add.operands[0], add.operands[1]
        for s, mask in ((a, b), (b, a)):
            if shape(s) != shape(value) or not isinstance(ir.RankedTensorType(mask.type).element_type, ir.F32Type):
                continue
            found = _scores(graph, s, add)
            if found is not None:
                found.ops.append(add)
                return found, mask
    found = _scores(graph, value, softmax)
    return (found, None) if found is not None else None


def fuse_pattern(graph: GraphContext) -> MatchAndRewrite:
    def fuse(matmul: ir.Operation, rewriter: PatternRewriter) -> bool | None:
        probs, v = matmul.operands[0], matmul.operands[1]
        softmax = producer_named(probs, "wpk.softmax")
        if softmax is None or not used_only_by(probs, matmul) or len(shape(probs)) != 4:
            return NO_MATCH
        if attr_int(softmax, "axis") != 3:
            return NO_MATCH
        found = _masked_scores(graph, softmax.operands[0], softmax)
        if found is None:
            return NO_MATCH
        scores, mask = found
        q_shape, v_shape = shape(scores.q), shape(v)
        k_shape = shape(scores.k) if scores.k_perm is None else [shape(scores.k)[p] for p in scores.k_perm]
        if len(v_shape) != 4 or v_shape[:2] != q_shape[:2] or v_shape[2] != k_shape[2] or q_shape[3] != k_shape[3]:
            return NO_MATCH
        with rewriter.ip:
            k = scores.k
            if scores.k_perm is not None:
                k_type = ir.RankedTensorType.get(k_shape, ir.F32Type.get())
                attrs = {"perm": ir.DenseI64ArrayAttr.get(scores.k_perm)}
                k = create_op("transpose", [k], [k_type], attrs, matmul.location).results[0]
            operands = [scores.q, k, v] + ([mask] if mask is not None else [])
            new = create_op(
                "attention",
                operands,
                [matmul.results[0].type],
                {"scale": f32_attr(scores.scale)},
                fused_location(*scores.ops, softmax, matmul),
            )
        rewriter.replace_op(matmul, new)
        return None

    return fuse


def patterns(graph: GraphContext) -> list[Pattern]:
    return [Pattern("wpk.matmul", fuse_pattern(graph))]


def fuse_attention(root: ir.Operation, graph: GraphContext) -> None:
    """The pass: every matched attention chain into one wpk.attention, then the dead chain erased."""
    apply_patterns(root, patterns(graph))
    erase_dead_ops(root)
