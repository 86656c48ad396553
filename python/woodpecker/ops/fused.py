"""The fused kernels: `wpk.elementwise` and the anchors with an epilogue (`wpk.fused_conv2d`,
`wpk.fused_matmul`, `wpk.fused_gemm`).

A fused anchor has the operands and attributes of its plain op (its `anchor`), then the side
operands `side0`..`side2` and its steps: its value is the plain op's, then the steps
(ops/steps.py). `wpk.elementwise` starts from its `input`. The operand names come from the
generated signature tables (woodpecker.dialect.signature).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from woodpecker.dialect import wpk
from woodpecker.dialect.signature import OPERANDS
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import Evaluator, OpSemantics, ShapeCheck, ShapeRule, register, semantics_of
from woodpecker.ops.rules import broadcast_shapes, fail, fmt
from woodpecker.ops.steps import MAX_SIDE_OPERANDS, Step, StepError, apply_steps, count_binary, decode_steps

SIDE_NAMES = tuple(f"side{i}" for i in range(MAX_SIDE_OPERANDS))

T = TypeVar("T")


@dataclass(frozen=True)
class FusedKind:
    """A fused op: the plain op it extends (None for wpk.elementwise) and its step attributes.

    A kind without a plain op may give its anchor's value directly (`value_shape`,
    `value_evaluate`: wpk.blocked_conv2d); without them the value is the elementwise `input`.
    """

    op: wpk.OpClass
    anchor: wpk.OpClass | None
    steps_attr: str = "epilogue"
    params_attr: str = "epilogue_params"
    value_shape: ShapeRule | None = None
    value_evaluate: Evaluator | None = None
    anchor_operands: tuple[str, ...] = field(init=False)
    optional: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        declared = [(n, v) for n, v in OPERANDS[self.op.OPERATION_NAME] if n not in SIDE_NAMES]
        object.__setattr__(self, "anchor_operands", tuple(n for n, _ in declared))
        object.__setattr__(self, "optional", frozenset(n for n, v in declared if v == "optional"))

    @property
    def name(self) -> str:
        return self.op.OPERATION_NAME


FUSED_KINDS: dict[wpk.OpClass, FusedKind] = {
    kind.op: kind
    for kind in (
        FusedKind(wpk.ElementwiseOp, None, "steps", "params"),
        FusedKind(wpk.FusedConv2DOp, wpk.Conv2DOp),
        FusedKind(wpk.FusedMatMulOp, wpk.MatMulOp),
        FusedKind(wpk.FusedGemmOp, wpk.GemmOp),
    )
}


@dataclass(frozen=True)
class FusedParts(Generic[T]):
    """A fused op's operands taken apart: anchor operands by name, side operands, steps."""

    anchor: dict[str, T | None]
    sides: list[T]
    steps: list[Step]


def split_parts(kind: FusedKind, operands: Mapping[str, T | None]) -> tuple[dict[str, T | None], list[T]]:
    """Anchor operands by name and the side operands in order; raises StepError when the sides
    leave gaps or a required anchor operand is absent."""
    present = [operands.get(n) for n in SIDE_NAMES]
    sides = [s for s in present if s is not None]
    if any(s is not None for s in present[len(sides) :]):
        raise StepError("side operands must fill side0, side1, side2 in order")
    anchor = {name: operands.get(name) for name in kind.anchor_operands}
    missing = [n for n in kind.anchor_operands if anchor[n] is None and n not in kind.optional]
    if missing:
        raise StepError(f"operand '{missing[0]}' is required")
    return anchor, sides


def fused_parts(kind: FusedKind, args: OpArgs[T]) -> FusedParts[T]:
    """Anchor operands, side operands (in order) and decoded steps; raises StepError."""
    anchor, sides = split_parts(kind, args.operands)
    steps = decode_steps(args.attr(kind.steps_attr), args.attr(kind.params_attr))
    return FusedParts(anchor, sides, steps)


def _checked_parts(kind: FusedKind, args: OpArgs[Shape]) -> FusedParts[Shape]:
    try:
        parts = fused_parts(kind, args)
    except StepError as err:
        fail(str(err))
    binary = count_binary(parts.steps)
    if binary != len(parts.sides):
        fail(f"the steps take {binary} side operand(s), but {len(parts.sides)} are given")
    return parts


def _anchor_args(parts: FusedParts[T], args: OpArgs[T]) -> OpArgs[T]:
    return OpArgs(parts.anchor, args.attrs, args.result)


def _value_shape(kind: FusedKind, parts: FusedParts[Shape], args: OpArgs[Shape]) -> Shape:
    """The shape the steps start from: the anchor's result, or the broadcast of the elementwise operands."""
    if kind.value_shape is not None:
        return list(kind.value_shape(_anchor_args(parts, args)))
    if kind.anchor is not None:
        return semantics_of(kind.anchor).result_shape(_anchor_args(parts, args))
    out: list[int] | None = list(parts.anchor["input"] or [])
    for side in parts.sides:
        out = broadcast_shapes(out, side) if out is not None else None
    if out is None:
        fail("the input and side operand shapes are not broadcast-compatible")
    return out


def _checker(kind: FusedKind) -> ShapeCheck:
    def check(args: OpArgs[Shape]) -> None:
        """The steps fit the side operands, the result has the value's shape, the sides broadcast to it."""
        parts = _checked_parts(kind, args)
        out = _value_shape(kind, parts, args)
        got = list(args.result or ())
        if got != out:
            fail(f"result shape {fmt(got)} does not match the expected shape {fmt(out)}")
        for i, side in enumerate(parts.sides):
            if broadcast_shapes(side, out) != out:
                fail(f"side operand #{i} of shape {fmt(side)} does not broadcast to the result shape {fmt(out)}")

    return check


def _shaper(kind: FusedKind) -> ShapeRule:
    def shape(args: OpArgs[Shape]) -> Shape:
        return _value_shape(kind, _checked_parts(kind, args), args)

    return shape


def _evaluator(kind: FusedKind) -> Evaluator:
    def evaluate(args: OpArgs[np.ndarray]) -> np.ndarray:
        parts = fused_parts(kind, args)
        if kind.value_evaluate is not None:
            value = kind.value_evaluate(_anchor_args(parts, args))
        elif kind.anchor is None:
            value = parts.anchor["input"]
        else:
            value = semantics_of(kind.anchor).run(_anchor_args(parts, args))
        return apply_steps(value, parts.steps, parts.sides)

    return evaluate


def register_fused(kind: FusedKind) -> None:
    """Registers a fused kind and its semantics (the steps after the anchor's value)."""
    if kind.op in FUSED_KINDS:
        raise ValueError(f"fused kind '{kind.name}' is already registered")
    FUSED_KINDS[kind.op] = kind
    _register_semantics(kind)


def _register_semantics(kind: FusedKind) -> None:
    register(OpSemantics(kind.op, shape=_shaper(kind), check=_checker(kind), evaluate=_evaluator(kind)))


for _kind in FUSED_KINDS.values():
    _register_semantics(_kind)
