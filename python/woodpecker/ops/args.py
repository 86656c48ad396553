"""`OpArgs`: what an op's semantics sees of one op, and the errors its rules raise.

The same shape rule and numpy evaluation serve the verifier (operands as shapes), constant
folding (operands as arrays) and the tests' reference (arrays and attributes given directly):
operands are named as declared in dialects/WpkOps.td (None for an absent Optional one),
attributes are Python values (ints, floats, bools, lists; the attribute itself for a weight's
or constant's `value`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

Shape = list[int]


class ShapeRuleError(ValueError):
    """Operands or attributes that break an op's rules; the message follows the `'wpk.op' op` prefix."""


class NotEvaluable(ValueError):
    """The op (or this use of it) has no numpy evaluation."""


@dataclass(frozen=True)
class OpArgs(Generic[T]):
    """Named operands (shapes or arrays), attributes and, when known, the result shape."""

    operands: Mapping[str, T | None]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    result: tuple[int, ...] | None = None
    result_dtype: Any = None  # the result's numpy dtype where an evaluation needs it (cast)

    def __getitem__(self, name: str) -> T:
        value = self.operands.get(name)
        if value is None:
            raise ShapeRuleError(f"operand '{name}' is required")
        return value

    def get(self, name: str) -> T | None:
        """An Optional operand (None when absent)."""
        return self.operands.get(name)

    def attr(self, name: str) -> Any:
        if name not in self.attrs:
            raise ShapeRuleError(f"attribute '{name}' is required")
        return self.attrs[name]

    def values(self) -> list[T]:
        """The present operands in declaration order."""
        return [v for v in self.operands.values() if v is not None]

    def result_shape(self) -> tuple[int, ...]:
        if self.result is None:
            raise NotEvaluable("the result shape is needed and unknown")
        return self.result
