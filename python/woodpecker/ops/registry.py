"""`OpSemantics`, one per `wpk` op class, and the registry the op families fill at import.

An entry says, for its op class (woodpecker.dialect.wpk):

* `shape`: the result shape from the operand shapes and attributes (the verifier compares it
  with the result type); it raises ShapeRuleError naming what is wrong;
* `check`: instead of `shape`, for an op whose result shape is not a function of its operands
  (reshape, pooling's floor-or-ceil windows, a weight's payload): checks `args.result`;
* `evaluate`: its numpy semantics in float64 (constant folding, the tests' reference); an
  integer or bool result keeps its dtype (the integer, bool and indexing ops, ops/typed.py);
* `elements`: for an op with other element types than f32, the rule relating them (operand
  name -> element type name, the result's), raising ShapeRuleError (the verifier checks it);
* `step` (and `swapped_step` for a binary op whose running value is its right operand): the
  step it becomes in a fused kernel; for these ops `evaluate` is the step's numpy code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlir import ir

from woodpecker.dialect.signature import attribute_values
from woodpecker.dialect.wpk import OP_CLASSES, OpClass, op_class
from woodpecker.ops.args import NotEvaluable, OpArgs, Shape, ShapeRuleError
from woodpecker.ops.rules import fail, fmt
from woodpecker.ops.steps import Step, StepKind, register_step

ShapeRule = Callable[[OpArgs[Shape]], Shape]
ShapeCheck = Callable[[OpArgs[Shape]], None]
ElementRule = Callable[[Mapping[str, str], str], None]
Evaluator = Callable[[OpArgs[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class OpSemantics:
    """The semantics of one `wpk` op class (see the module docstring)."""

    op: OpClass
    shape: ShapeRule | None = None
    check: ShapeCheck | None = None
    evaluate: Evaluator | None = None
    step: StepKind | None = None
    swapped_step: StepKind | None = None
    elements: ElementRule | None = None

    @property
    def name(self) -> str:
        return self.op.OPERATION_NAME

    def verify(self, args: OpArgs[Shape]) -> None:
        """Checks operand shapes, attribute values and `args.result`; raises ShapeRuleError."""
        if self.check is not None:
            self.check(args)
            return
        if self.shape is None:
            return
        expected = self.shape(args)
        got = list(args.result or ())
        if got != list(expected):
            fail(f"result shape {fmt(got)} does not match the expected shape {fmt(expected)}")

    def check_elements(self, operands: Mapping[str, str], result: str) -> None:
        """Checks the op's element-type rule (operand name -> 'f32'/'i64'/...; raises ShapeRuleError)."""
        if self.elements is not None:
            self.elements(operands, result)

    def result_shape(self, args: OpArgs[Shape]) -> Shape:
        """The result shape for these operands and attributes (raises ShapeRuleError)."""
        if self.shape is None:
            raise ShapeRuleError(f"'{self.name}' has no result shape rule")
        return list(self.shape(args))

    def run(self, args: OpArgs[np.ndarray]) -> np.ndarray:
        """The numpy result: float64, or an integer or bool array as the op computes it (raises
        NotEvaluable)."""
        if self.evaluate is None:
            raise NotEvaluable(f"no numpy evaluation for '{self.name}'")
        with np.errstate(all="ignore"):
            result = np.asarray(self.evaluate(args))
        return result if result.dtype.kind in "biu" else result.astype(np.float64)

    def op_step(self, attrs: Mapping[str, Any], position: int = 0) -> Step | None:
        """The step of this op with its parameters read from `attrs`, the running value being
        operand `position`; None when the op is not a step (or not from that operand)."""
        kind = self.step if position == 0 else self.swapped_step
        if kind is None:
            return None
        return Step(kind.name, tuple(float(attrs[p]) for p in kind.params))


_SEMANTICS: dict[OpClass, OpSemantics] = {}


def register(semantics: OpSemantics) -> OpSemantics:
    """Registers the semantics of one op class (and its step kinds); once per class."""
    if semantics.op in _SEMANTICS:
        raise ValueError(f"semantics of '{semantics.name}' are already registered")
    for kind in (semantics.step, semantics.swapped_step):
        if kind is not None:
            register_step(kind)
    _SEMANTICS[semantics.op] = semantics
    return semantics


def semantics_of(op: str | OpClass | Any) -> OpSemantics:
    """The semantics of a `wpk` op given by class, name ('wpk.relu' or 'relu') or op.

    Raises KeyError naming the op when it is not a `wpk` op or has no registered semantics.
    """
    cls = op_class(op)
    entry = _SEMANTICS.get(cls)
    if entry is None:
        raise KeyError(f"no semantics registered for '{cls.OPERATION_NAME}'")
    return entry


def registered() -> Iterator[OpSemantics]:
    """Every registered entry, in registration order."""
    return iter(list(_SEMANTICS.values()))


def step_op_names() -> list[str]:
    """The `wpk` ops that are a step (the elementwise ops wpk-fuse can chain), in name order."""
    return sorted(entry.name for entry in _SEMANTICS.values() if entry.step is not None)


def op_step(op: ir.Operation | ir.OpView, position: int = 0) -> Step | None:
    """The step of an elementwise `wpk` op (parameters from its attributes) with the running
    value as its operand `position`; None when `op` is no step from that operand."""
    op = op.operation
    if op.name not in OP_CLASSES:
        return None
    return semantics_of(op.name).op_step(attribute_values(op), position)
