"""Operand layout of the fused `wpk` kernels and building them from Python.

The fused ops have Optional operands (`bias`/`c`, `side0`..`side2`) and so an
`operandSegmentSizes` attribute (one 0/1 entry per declared operand). This
module maps between that layout and named operands plus a list of side operands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlir import ir

from woodpecker.dialect import create_op
from woodpecker.dialect.steps import MAX_SIDE_OPERANDS, Step, StepError, read_steps, steps_attrs

SEGMENTS_ATTR = "operandSegmentSizes"
SIDE_NAMES = tuple(f"side{i}" for i in range(MAX_SIDE_OPERANDS))


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


FUSED_LAYOUTS: dict[str, FusedLayout] = {
    layout.name: layout
    for layout in (
        FusedLayout("wpk.elementwise", ("input",), frozenset(), "steps", "params"),
        FusedLayout("wpk.fused_conv2d", ("input", "filter", "bias"), frozenset({"bias"})),
        FusedLayout("wpk.fused_matmul", ("lhs", "rhs"), frozenset()),
        FusedLayout("wpk.fused_gemm", ("a", "b", "c"), frozenset({"c"})),
    )
}

# The plain op each fused anchor op extends (same anchor operands and attributes).
ANCHOR_OF_FUSED: dict[str, str] = {
    "wpk.fused_conv2d": "wpk.conv2d",
    "wpk.fused_matmul": "wpk.matmul",
    "wpk.fused_gemm": "wpk.gemm",
}
FUSED_OF_ANCHOR: dict[str, str] = {plain: fused for fused, plain in ANCHOR_OF_FUSED.items()}
# Anchor operand names of the plain ops, in operand order.
PLAIN_OPERANDS: dict[str, tuple[str, ...]] = {
    "wpk.conv2d": ("input", "filter", "bias"),
    "wpk.matmul": ("lhs", "rhs"),
    "wpk.gemm": ("a", "b", "c"),
}


@dataclass
class FusedOperands:
    """A fused op taken apart: anchor operands by name (None when absent), side operands and steps."""

    layout: FusedLayout
    anchor: dict[str, ir.Value | None]
    sides: list[ir.Value] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


def segment_sizes(op: ir.Operation | ir.OpView, count: int) -> list[int]:
    """The `operandSegmentSizes` of `op` (all ones when absent and the op has `count` operands)."""
    if SEGMENTS_ATTR in op.attributes:
        return [int(v) for v in ir.DenseI32ArrayAttr(op.attributes[SEGMENTS_ATTR])]
    return [1] * count


def unpack(op: ir.Operation | ir.OpView) -> FusedOperands:
    """Splits a fused op's operands by its segment sizes; raises StepError on malformed ops."""
    op = op.operation
    layout = FUSED_LAYOUTS[op.name]
    names = layout.operand_names
    sizes = segment_sizes(op, len(names))
    if len(sizes) != len(names) or sum(sizes) != len(op.operands) or any(s not in (0, 1) for s in sizes):
        raise StepError(f"'{SEGMENTS_ATTR}' {sizes} does not describe the {len(op.operands)} operands {names}")
    values = iter(list(op.operands))
    present = {name: (next(values) if size else None) for name, size in zip(names, sizes, strict=True)}
    sides = [present[n] for n in SIDE_NAMES if present[n] is not None]
    if any(present[n] is not None for n in SIDE_NAMES[len(sides) :]):
        raise StepError("side operands must fill side0, side1, side2 in order")
    anchor = {name: present[name] for name in layout.anchor}
    missing = [n for n in layout.anchor if anchor[n] is None and n not in layout.optional]
    if missing:
        raise StepError(f"operand '{missing[0]}' is required")
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
