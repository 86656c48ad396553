"""Operand layout of the fused `wpk` kernels on IR, and building them from Python.

The fused ops have Optional operands (`bias`/`c`, `side0`..`side2`) and so an
`operandSegmentSizes` attribute (one 0/1 entry per declared operand). This
module maps between that layout and named operands plus a list of side operands
(the fused kinds of ops/fused.py, the generated operand tables); the graph passes
build fused ops with it and the lowering takes them apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlir import ir

from woodpecker.dialect import create_op
from woodpecker.dialect.signature import SEGMENTS_ATTR, SignatureError, operand_names, segment_sizes, split_operands
from woodpecker.ops.fused import FUSED_KINDS, SIDE_NAMES, split_parts
from woodpecker.ops.steps import MAX_SIDE_OPERANDS, Step, StepError, read_steps, steps_attrs

__all__ = [
    "ANCHOR_OF_FUSED",
    "FUSED_LAYOUTS",
    "FUSED_OF_ANCHOR",
    "PLAIN_OPERANDS",
    "SEGMENTS_ATTR",
    "SIDE_NAMES",
    "FusedLayout",
    "FusedOperands",
    "anchor_attributes",
    "as_fused",
    "build",
    "segment_sizes",
    "unpack",
]


@dataclass(frozen=True)
class FusedLayout:
    """A fused op: its leading (anchor) operands, which of them are optional, and its step attributes."""

    name: str
    anchor: tuple[str, ...]
    optional: frozenset[str]
    steps_attr: str = "epilogue"
    params_attr: str = "epilogue_params"

    @property
    def operand_names(self) -> tuple[str, ...]:
        return (*self.anchor, *SIDE_NAMES)


# From the fused kinds of ops/fused.py and the generated operand tables.
FUSED_LAYOUTS: dict[str, FusedLayout] = {
    kind.name: FusedLayout(kind.name, kind.anchor_operands, kind.optional, kind.steps_attr, kind.params_attr)
    for kind in FUSED_KINDS.values()
}

# The plain op each fused anchor op extends (same anchor operands and attributes).
ANCHOR_OF_FUSED: dict[str, str] = {
    kind.name: kind.anchor.OPERATION_NAME for kind in FUSED_KINDS.values() if kind.anchor is not None
}
FUSED_OF_ANCHOR: dict[str, str] = {plain: fused for fused, plain in ANCHOR_OF_FUSED.items()}
# Anchor operand names of the plain ops, in operand order.
PLAIN_OPERANDS: dict[str, tuple[str, ...]] = {plain: operand_names(plain) for plain in FUSED_OF_ANCHOR}
_KIND_OF = {kind.name: kind for kind in FUSED_KINDS.values()}


@dataclass
class FusedOperands:
    """A fused op taken apart: anchor operands by name (None when absent), side operands and steps."""

    layout: FusedLayout
    anchor: dict[str, ir.Value | None]
    sides: list[ir.Value] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


def unpack(op: ir.Operation | ir.OpView) -> FusedOperands:
    """Splits a fused op's operands by its segment sizes; raises StepError on malformed ops."""
    op = op.operation
    layout = FUSED_LAYOUTS[op.name]
    try:
        operands = split_operands(op)
    except SignatureError as err:
        raise StepError(str(err)) from None
    anchor, sides = split_parts(_KIND_OF[op.name], operands)
    steps = read_steps(op, layout.steps_attr, layout.params_attr)
    return FusedOperands(layout, anchor, sides, steps)


def build(
    name: str,
    anchor: Mapping[str, ir.Value | None],
    sides: Sequence[ir.Value],
    steps: Sequence[Step],
    result_type: ir.Type,
    attributes: Mapping[str, ir.Attribute] | None = None,
    loc: ir.Location | None = None,
) -> ir.Operation:
    """Creates fused op `name` at the current insertion point (operandSegmentSizes included).

    `attributes` are the anchor's own (strides, alpha, ...); the step attributes are set here.
    """
    layout = FUSED_LAYOUTS[name]
    if len(sides) > MAX_SIDE_OPERANDS:
        raise StepError(f"{len(sides)} side operands, at most {MAX_SIDE_OPERANDS}")
    operands: list[ir.Value] = []
    sizes: list[int] = []
    for operand_name in layout.anchor:
        value = anchor.get(operand_name)
        sizes.append(0 if value is None else 1)
        if value is not None:
            operands.append(value)
    operands.extend(sides)
    sizes.extend([1] * len(sides) + [0] * (MAX_SIDE_OPERANDS - len(sides)))
    names_attr, params_attr = steps_attrs(steps)
    attrs = dict(attributes or {})
    attrs[layout.steps_attr] = names_attr
    attrs[layout.params_attr] = params_attr
    attrs[SEGMENTS_ATTR] = ir.DenseI32ArrayAttr.get(sizes)
    return create_op(name, operands, [result_type], attrs, loc)


def anchor_attributes(op: ir.Operation | ir.OpView) -> dict[str, ir.Attribute]:
    """The attributes of an anchor op (plain or fused) other than steps and segment sizes."""
    op = op.operation
    skip = {SEGMENTS_ATTR}
    layout = FUSED_LAYOUTS.get(op.name)
    if layout is not None:
        skip |= {layout.steps_attr, layout.params_attr}
    return {name: attr for name, attr in op.attributes.items() if name not in skip}


def as_fused(op: ir.Operation | ir.OpView) -> FusedOperands:
    """A plain anchor (conv2d, matmul, gemm) or fused op as FusedOperands of the fused form."""
    op = op.operation
    if op.name in FUSED_LAYOUTS:
        return unpack(op)
    fused_name = FUSED_OF_ANCHOR[op.name]
    names = PLAIN_OPERANDS[op.name]
    values = list(op.operands)
    anchor = {n: (values[i] if i < len(values) else None) for i, n in enumerate(names)}
    return FusedOperands(FUSED_LAYOUTS[fused_name], anchor)
