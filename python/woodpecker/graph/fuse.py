"""`wpk-fuse`: operator fusion, so that every op left in `@main` is one kernel.

Phase 1 (greedy, to a fixpoint) lets anchors take what they can: pad, silu and
epilogue. Phase 2 then forms chains of what is left (and still lets a chain join
an anchor's epilogue):

* **epilogue** (benefit 2): an elementwise op whose running operand is the
  single-use result of an anchor (`wpk.conv2d`, `wpk.matmul`, `wpk.gemm`, or
  an already fused one) and which keeps the anchor's result shape becomes a
  step of the anchor's epilogue: `wpk.fused_conv2d` / `wpk.fused_matmul` /
  `wpk.fused_gemm` with `epilogue = [...]`. Bias adds, residual adds and every
  activation that is a step (relu, clip for relu6, silu, ...: the elementwise
  ops of woodpecker.ops) fuse this way.
* **silu** (benefit 3): `x * sigmoid(x)` becomes one `silu` step.
* **gelu** (benefit 3): `x * 0.5 * (1 + erf(x / sqrt 2))` becomes one `gelu` step (graph/gelu.py).
* **chain** (benefit 1): an elementwise op whose running operand is the
  single-use result of another elementwise op joins it in one
  `wpk.elementwise` kernel.
* **pad**: a constant `wpk.pad` of the spatial dimensions folds into the
  padding of the following conv (value 0), max_pool (value -inf) or avg_pool
  (value 0, counting the pads; not with ceil_mode).

A fused op takes at most three side operands (IRDL needs a fixed operand
list), so a longer chain is split into several kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlir import ir
from mlir.rewrite import PatternRewriter

from woodpecker.dialect import attr_bool, attr_float, attr_ints, attr_str, bool_attr, i64_array_attr
from woodpecker.graph.context import DATA_OPS
from woodpecker.graph.gelu import gelu
from woodpecker.graph.rewrite import (
    NO_MATCH,
    Pattern,
    apply_patterns,
    erase_dead_ops,
    fused_location,
    producer,
    producer_named,
    shape,
    use_count,
    used_only_by,
)
from woodpecker.ops import semantics_of
from woodpecker.ops.fused_layout import ANCHOR_OF_FUSED, FUSED_OF_ANCHOR, anchor_attributes, as_fused, build, unpack
from woodpecker.ops.registry import op_step, step_op_names
from woodpecker.ops.steps import MAX_SIDE_OPERANDS, Step, StepError

PASS_NAME = "wpk-fuse"

ANCHORS = frozenset(FUSED_OF_ANCHOR) | frozenset(ANCHOR_OF_FUSED)
# The ops that are one step (woodpecker.ops: every elementwise op's entry names its step).
STEP_OPS = frozenset(step_op_names())
BINARY_STEP_OPS = frozenset(name for name in STEP_OPS if semantics_of(name).swapped_step is not None)
ELEMENTWISE = STEP_OPS | {"wpk.elementwise"}


@dataclass
class StepView:
    """An elementwise op seen as steps applied to one of its operands (the running value)."""

    running: ir.Value
    steps: list[Step]
    sides: list[ir.Value]


def step_view(op: ir.Operation, position: int) -> StepView | None:
    """`op` as steps on its operand `position`, or None if it cannot be seen that way."""
    operands = list(op.operands)
    if op.name in STEP_OPS:
        step = op_step(op, position)
        if step is None:
            return None
        sides = [operands[1 - position]] if step.binary else []
        return StepView(operands[position], [step], sides)
    if position != 0:
        return None
    if op.name == "wpk.elementwise":
        try:
            fused = unpack(op)
        except StepError:
            return None
        input_ = fused.anchor["input"]
        assert input_ is not None
        return StepView(input_, fused.steps, fused.sides)
    return None


def _positions(op: ir.Operation) -> list[int]:
    return [0, 1] if op.name in BINARY_STEP_OPS else [0]


def _running_rank(op: ir.Operation, position: int) -> int:
    """How good operand `position` is as the running value of a kernel (lower is better).

    The single-use result of an anchor comes first, so that the kernel can join the
    anchor's epilogue later; a weight or constant comes last.
    """
    value = op.operands[position]
    source = producer(value)
    if source is not None and source.name in ANCHORS and used_only_by(value, op):
        return 0
    if source is not None and source.name in DATA_OPS:
        return 2
    return 1


def kernel_view(op: ir.Operation) -> StepView | None:
    """`op` as a standalone elementwise kernel, running on its best operand (`_running_rank`)."""
    position = min(_positions(op), key=lambda p: _running_rank(op, p))
    return step_view(op, position)


# ----------------------------------------------------------------------------
# Patterns.


def absorb_into_anchor(op: ir.Operation, rewriter: PatternRewriter) -> bool | None:
    """anchor -> elementwise op  =>  fused anchor with the op's steps appended to its epilogue."""
    out_shape = shape(op.results[0])
    for position in _positions(op):
        view = step_view(op, position)
        if view is None:
            continue
        anchor = producer(view.running)
        if anchor is None or anchor.name not in ANCHORS or not used_only_by(view.running, op):
            continue
        if shape(view.running) != out_shape:
            continue  # the epilogue keeps the anchor's shape
        fused = as_fused(anchor)
        sides = fused.sides + view.sides
        if len(sides) > MAX_SIDE_OPERANDS:
            continue
        with rewriter.ip:
            new = build(
                fused.layout.name,
                fused.anchor,
                sides,
                fused.steps + view.steps,
                op.results[0].type,
                anchor_attributes(anchor),
                fused_location(anchor, op),
            )
        rewriter.replace_op(op, new)
        rewriter.erase_op(anchor)
        return None
    return NO_MATCH


def chain_elementwise(op: ir.Operation, rewriter: PatternRewriter) -> bool | None:
    """elementwise -> elementwise  =>  one wpk.elementwise with both step lists."""
    for position in _positions(op):
        view = step_view(op, position)
        if view is None:
            continue
        first = producer(view.running)
        if first is None or first.name not in ELEMENTWISE or not used_only_by(view.running, op):
            continue
        head = kernel_view(first)
        if head is None or len(head.sides) + len(view.sides) > MAX_SIDE_OPERANDS:
            continue
        with rewriter.ip:
            new = build(
                "wpk.elementwise",
                {"input": head.running},
                head.sides + view.sides,
                head.steps + view.steps,
                op.results[0].type,
                loc=fused_location(first, op),
            )
        rewriter.replace_op(op, new)
        rewriter.erase_op(first)
        return None
    return NO_MATCH


def silu(op: ir.Operation, rewriter: PatternRewriter) -> bool | None:
    """x * sigmoid(x)  =>  wpk.elementwise(x) {steps = ["silu"]}."""
    for x_pos in (0, 1):
        x, gate = op.operands[x_pos], op.operands[1 - x_pos]
        sigmoid = producer_named(gate, "wpk.sigmoid")
        if sigmoid is None or sigmoid.operands[0] != x or not used_only_by(gate, op):
            continue
        with rewriter.ip:
            new = build(
                "wpk.elementwise",
                {"input": x},
                [],
                [Step("silu")],
                op.results[0].type,
                loc=fused_location(sigmoid, op),
            )
        rewriter.replace_op(op, new)
        rewriter.erase_op(sigmoid)
        return None
    return NO_MATCH


def _pad_value_ok(op: ir.Operation, value: float) -> bool:
    if op.name in ("wpk.conv2d", "wpk.fused_conv2d"):
        return value == 0.0
    if attr_bool(op, "ceil_mode"):
        return False  # the ceil_mode window rule differs for padding and real data
    if op.name == "wpk.max_pool":
        return math.isinf(value) and value < 0
    # avg_pool: the padded zeros are counted, so the op must count its own pads too (or have none).
    return value == 0.0 and (attr_bool(op, "count_include_pad") or not any(attr_ints(op, "pads")))


def fold_pad(op: ir.Operation, rewriter: PatternRewriter) -> bool | None:
    """pad (constant, spatial only) -> conv/pool  =>  the conv/pool with larger pads."""
    pad = producer_named(op.operands[0], "wpk.pad")
    if pad is None or attr_str(pad, "mode") != "constant":
        return NO_MATCH
    amounts = attr_ints(pad, "pads")
    if len(amounts) != 8 or any(p < 0 for p in amounts) or any(amounts[i] for i in (0, 1, 4, 5)):
        return NO_MATCH
    if not _pad_value_ok(op, attr_float(pad, "value")):
        return NO_MATCH
    own = attr_ints(op, "pads")
    attrs = {name: attr for name, attr in op.attributes.items()}
    attrs["pads"] = i64_array_attr([own[0] + amounts[2], own[1] + amounts[3], own[2] + amounts[6], own[3] + amounts[7]])
    if op.name == "wpk.avg_pool":
        attrs["count_include_pad"] = bool_attr(True)
    with rewriter.ip:
        new = ir.Operation.create(
            op.name,
            results=[op.results[0].type],
            operands=[pad.operands[0], *list(op.operands)[1:]],
            attributes=attrs,
            loc=fused_location(pad, op),
        )
    rewriter.replace_op(op, new)
    if use_count(pad.results[0]) == 0:
        rewriter.erase_op(pad)
    return None


def anchor_patterns() -> list[Pattern]:
    """Phase 1: pads into convs/pools, silu, and epilogues into anchors."""
    found = [Pattern(name, fold_pad) for name in ("wpk.conv2d", "wpk.fused_conv2d", "wpk.max_pool", "wpk.avg_pool")]
    found.append(Pattern("wpk.mul", silu, benefit=3))
    found.append(Pattern("wpk.mul", gelu, benefit=3))
    found.extend(Pattern(name, absorb_into_anchor, benefit=2) for name in sorted(ELEMENTWISE))
    return found


def chain_patterns() -> list[Pattern]:
    """Phase 2: the remaining elementwise ops into chains (and a chain into an anchor if it can)."""
    found = [Pattern(name, absorb_into_anchor, benefit=2) for name in sorted(ELEMENTWISE)]
    found.extend(Pattern(name, chain_elementwise, benefit=1) for name in sorted(ELEMENTWISE))
    return found


def fuse(root: ir.Operation) -> None:
    """The pass: anchors absorb their epilogues first (each phase to a fixpoint), then the
    remaining elementwise ops form chains; dead ops are erased."""
    apply_patterns(root, anchor_patterns())
    apply_patterns(root, chain_patterns())
    erase_dead_ops(root)
