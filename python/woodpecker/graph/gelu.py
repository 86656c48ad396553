"""The GELU that exporters write as elementwise ops, recognized as one `gelu` step (a wpk-fuse
pattern, like silu): `x * 0.5 * (1 + erf(x / sqrt 2))` in any association and order of the
products, the scale of erf's operand as a division by sqrt 2 or a product with 1/sqrt 2.

Every intermediate value must have the pattern as its only user (x itself may have others).
The constants are scalar `wpk.constant` ops, matched to within 1e-6 relative.
"""

from __future__ import annotations

import math

import numpy as np
from mlir import ir
from mlir.rewrite import PatternRewriter

from woodpecker.graph.rewrite import NO_MATCH, fused_location, producer, producer_named, shape, used_only_by
from woodpecker.ops.fused_layout import build
from woodpecker.ops.steps import Step


def scalar_constant(value: ir.Value) -> float | None:
    """The value of a one-element `wpk.constant`, else None."""
    op = producer_named(value, "wpk.constant")
    if op is None:
        return None
    array = np.asarray(ir.DenseFPElementsAttr(op.attributes["value"]))
    return float(array.reshape(-1)[0]) if array.size == 1 else None


def _is(value: ir.Value, expected: float) -> bool:
    got = scalar_constant(value)
    return got is not None and math.isclose(got, expected, rel_tol=1e-6)


def _factors(value: ir.Value, user: ir.Operation, inner: list[ir.Operation]) -> list[ir.Value]:
    """The leaves of the product tree at `value` (its single-use wpk.mul producers are opened)."""
    op = producer_named(value, "wpk.mul")
    if op is None or not used_only_by(value, user):
        return [value]
    inner.append(op)
    return [leaf for operand in op.operands for leaf in _factors(operand, op, inner)]


def _erf_argument_of(gate: ir.Value, user: ir.Operation, inner: list[ir.Operation]) -> ir.Value | None:
    """x when `gate` is `1 + erf(x / sqrt 2)` (single-use parts), else None."""
    add = producer_named(gate, "wpk.add")
    if add is None or not used_only_by(gate, user):
        return None
    for erf_pos in (0, 1):
        erf_value, one = add.operands[erf_pos], add.operands[1 - erf_pos]
        erf = producer_named(erf_value, "wpk.erf")
        if erf is None or not _is(one, 1.0) or not used_only_by(erf_value, add):
            continue
        scaled = erf.operands[0]
        scale = producer(scaled)
        if scale is None or not used_only_by(scaled, erf):
            continue
        x, factor = scale.operands[0], scale.operands[1]
        if scale.name == "wpk.div" and _is(factor, math.sqrt(2.0)):
            inner.extend([add, erf, scale])
            return x
        if scale.name == "wpk.mul":
            for x_pos in (0, 1):
                x, factor = scale.operands[x_pos], scale.operands[1 - x_pos]
                if _is(factor, math.sqrt(0.5)):
                    inner.extend([add, erf, scale])
                    return x
    return None


def gelu(op: ir.Operation, rewriter: PatternRewriter) -> bool | None:
    """x * 0.5 * (1 + erf(x / sqrt 2))  =>  wpk.elementwise(x) {steps = ["gelu"]}."""
    inner: list[ir.Operation] = []
    leaves = [leaf for operand in op.operands for leaf in _factors(operand, op, inner)]
    if len(leaves) != 3:
        return NO_MATCH
    for gate_pos in range(3):
        gate = leaves[gate_pos]
        users = [candidate for candidate in [op, *inner] if any(v == gate for v in candidate.operands)]
        if len(users) != 1:
            continue
        gate_inner: list[ir.Operation] = []
        x = _erf_argument_of(gate, users[0], gate_inner)
        if x is None:
            continue
        rest = [leaves[i] for i in range(3) if i != gate_pos]
        if not ((rest[0] == x and _is(rest[1], 0.5)) or (rest[1] == x and _is(rest[0], 0.5))):
            continue
        if shape(x) != shape(op.results[0]):
            continue
        with rewriter.ip:
            new = build(
                "wpk.elementwise",
                {"input": x},
                [],
                [Step("gelu")],
                op.results[0].type,
                loc=fused_location(*gate_inner, *inner, op),
            )
        rewriter.replace_op(op, new)
        for dead in [*inner, *gate_inner]:  # each one's users are erased before it
            rewriter.erase_op(dead)
        return None
    return NO_MATCH
