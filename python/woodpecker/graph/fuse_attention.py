"""`wpk-fuse-attention`: the scaled dot-product attention chain of exported transformers into one
`wpk.attention`.

Matched (as the importer and wpk-fold-transpose leave it), rooted at the second matmul:

    s = matmul_transposed(q, k) | matmul(q, kt)   (kt = transpose(x, perm) with perm[-2] the last
        dim of x, or that [h, d, t] transpose viewed as [1, h, d, t]: k is made of x)
    s = s * c | c * s | s / c                  (optional; c a one-element constant)
    s = s + mask | mask + s                     (optional; mask broadcasting to s, any producer)
    y = matmul(softmax(s, axis = 3), v)

with q, k, v of rank 4 sharing [B, H] and every intermediate used only by the next op. A
scale on q or on k before the first matmul (`q * c`, `q / c`, as some BERT exports split
1/sqrt(d) into two 1/d^(1/4) factors) folds into the op's scale when that product is used
only there. The result is `wpk.attention(q, k, v, mask?) {scale}` (ops/attention.py).

Not matched (left as they are): a causal mask applied with Where (the GPT-2 export in
/work/models combines it into one additive mask first, and matches), a scale applied after the
mask, two mask adds (Swin's shifted windows), 3-D [B*H, S, D] heads, and any chain with an
intermediate used elsewhere.
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

    q: ir.Value | None
    k: ir.Value  # k itself, or what `k_perm` transposes (and a reshape to `k_shape` views) as k
    k_perm: list[int] | None
    k_shape: list[int]  # of k, [B, H, T, D]
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


def _k_from_transpose(graph: GraphContext, value: ir.Value, user: ir.Operation) -> Scores | None:
    """K^T given as transpose(x, perm) with perm moving the last dim of x to the rows (perm[-2]
    the last dim), optionally viewed with a leading unit dim (`reshape` [h, d, t] -> [1, h, d, t],
    as torch's exported multi-head attention does): k is x transposed by perm with its last two
    entries exchanged (x itself for [0, 1, 3, 2]), reshaped likewise. A constant factor on x
    folds into the scale. Scores(q = None) on success."""
    ops: list[ir.Operation] = []
    reshape = producer_named(value, "wpk.reshape")
    if reshape is not None:
        inner = reshape.operands[0]
        if not used_only_by(value, user) or len(shape(inner)) != 3 or shape(value) != [1, *shape(inner)]:
            return None
        ops.append(reshape)
        value, user = inner, reshape
    transpose = producer_named(value, "wpk.transpose")
    if transpose is None or not used_only_by(value, user):
        return None
    perm = list(ir.DenseI64ArrayAttr(transpose.attributes["perm"]))
    if perm[-2] != len(perm) - 1:
        return None
    perm = unswapped_perm(perm)
    x, scale, inner_ops = _unscaled(graph, transpose.operands[0], transpose)
    k_shape = [shape(x)[p] for p in perm]
    return Scores(
        None,
        x,
        None if perm == list(range(len(perm))) else perm,
        [1] * (4 - len(k_shape)) + k_shape,
        scale,
        [*ops, transpose, *inner_ops],
    )


def _first_matmul(graph: GraphContext, value: ir.Value, user: ir.Operation) -> Scores | None:
    """q k^T: a matmul_transposed(q, k), or a matmul of q and a transposed k (`_k_from_transpose`).
    A constant factor on q or on k^T, used only there, folds into the scale."""
    op = producer_named(value, ("wpk.matmul_transposed", "wpk.matmul"))
    if op is None or not used_only_by(value, user):
        return None
    q, q_scale, q_ops = _unscaled(graph, op.operands[0], op)
    k, k_scale, k_ops = _unscaled(graph, op.operands[1], op)
    ops = [*q_ops, *k_ops, op]
    if op.name == "wpk.matmul":
        found = _k_from_transpose(graph, k, k_ops[0] if k_ops else op)
        if found is None:
            return None
        k, k_perm, k_shape = found.k, found.k_perm, found.k_shape
        k_scale *= found.scale
        ops += found.ops
    else:
        k_perm, k_shape = None, shape(k)
    if len(shape(q)) != 4 or len(k_shape) != 4 or shape(q)[:2] != k_shape[:2]:
        return None
    return Scores(q, k, k_perm, k_shape, q_scale * k_scale, ops)


def _scores(graph: GraphContext, value: ir.Value, user: ir.Operation) -> Scores | None:
    """The scores chain ending in `value` (used by `user`): an optional constant scale on q k^T."""
    scaled = _scaled(graph, value, user)
    if scaled is None:
        return _first_matmul(graph, value, user)
    x, factor, op = scaled
    found = _first_matmul(graph, x, op)
    if found is None:
        return None
    return Scores(found.q, found.k, found.k_perm, found.k_shape, found.scale * factor, [*found.ops, op])


def _masked_scores(
    graph: GraphContext, value: ir.Value, softmax: ir.Operation
) -> tuple[Scores, ir.Value | None] | None:
    """The softmax input: scores plus a mask (either operand order), or the scores alone."""
    add = producer_named(value, "wpk.add")
    if add is not None and used_only_by(value, softmax):
        a, b = add.operands[0], add.operands[1]
        for s, mask in ((a, b), (b, a)):
            if shape(s) != shape(value) or not shape(mask):  # a rank-0 mask (a uniform shift) is not taken
                continue
            if not isinstance(ir.RankedTensorType(mask.type).element_type, ir.F32Type):
                continue
            found = _scores(graph, s, add)
            if found is not None:
                found.ops.append(add)
                return found, mask
    found = _scores(graph, value, softmax)
    return (found, None) if found is not None else None


def _f32_tensor(dims: list[int]) -> ir.RankedTensorType:
    return ir.RankedTensorType.get(dims, ir.F32Type.get())


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
        q_shape, k_shape, v_shape = shape(scores.q), scores.k_shape, shape(v)
        if len(v_shape) != 4 or v_shape[:2] != q_shape[:2] or v_shape[2] != k_shape[2] or q_shape[3] != k_shape[3]:
            return NO_MATCH
        with rewriter.ip:
            k = scores.k
            if scores.k_perm is not None:
                transposed = [shape(k)[p] for p in scores.k_perm]
                attrs = {"perm": ir.DenseI64ArrayAttr.get(scores.k_perm)}
                k = create_op("transpose", [k], [_f32_tensor(transposed)], attrs, matmul.location).results[0]
            if shape(k) != k_shape:
                k = create_op("reshape", [k], [_f32_tensor(k_shape)], {}, matmul.location).results[0]
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
