"""Helpers of the shape rules: failing with the verifier's wording, ranks, lengths, broadcasting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from woodpecker.ops.args import ShapeRuleError


def fail(message: str) -> NoReturn:
    raise ShapeRuleError(message)


def fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast_shapes(a: Sequence[int], b: Sequence[int]) -> list[int] | None:
    """Numpy broadcasting of two static shapes, None when incompatible."""
    out = []
    for i in range(max(len(a), len(b))):
        da = a[len(a) - 1 - i] if i < len(a) else 1
        db = b[len(b) - 1 - i] if i < len(b) else 1
        if da != db and da != 1 and db != 1:
            return None
        out.append(db if da == 1 else da)
    return out[::-1]


def expect_rank(what: str, shape: Sequence[int], rank: int) -> None:
    if len(shape) != rank:
        fail(f"{what} must be {rank}-D, but has rank {len(shape)}")


def expect_len(name: str, values: Sequence[int], n: int) -> list[int]:
    if len(values) != n:
        fail(f"attribute '{name}' must have {n} values, but has {len(values)}")
    return list(values)


def positive(name: str, values: Sequence[int]) -> None:
    if any(v < 1 for v in values):
        fail(f"attribute '{name}' values must be positive, got {fmt(values)}")


def non_negative(name: str, values: Sequence[int]) -> None:
    if any(v < 0 for v in values):
        fail(f"attribute '{name}' values must be non-negative, got {fmt(values)}")


def axis_in_range(axis: int, rank: int, inclusive_end: bool = False) -> int:
    hi = rank if inclusive_end else rank - 1
    if not 0 <= axis <= hi:
        fail(f"attribute 'axis' = {axis} is out of range [0, {hi}]")
    return axis
