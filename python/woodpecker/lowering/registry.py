"""The lowering registry: `@lowers(wpk.ReluOp)` next to each lowering, looked up by op class.

A lowering builds the replacement of one `wpk` op at the current insertion point and returns
the value that replaces its result (the driver, lowering/__init__.py, sets the insertion point
and location and checks the type).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from mlir import ir

from woodpecker.dialect.wpk import OP_CLASSES, OpClass

Lowering = Callable[[ir.Operation], ir.Value]

_LOWERINGS: dict[OpClass, Lowering] = {}

LOWERINGS: Mapping[OpClass, Lowering] = MappingProxyType(_LOWERINGS)
"""`wpk` op class -> function building its replacement at the current insertion point."""


def lowers(*ops: OpClass) -> Callable[[Lowering], Lowering]:
    """Registers the decorated function as the lowering of `ops` (once per op class)."""

    def register(fn: Lowering) -> Lowering:
        for op in ops:
            if op in _LOWERINGS:
                raise ValueError(f"'{op.OPERATION_NAME}' already has a lowering ({_LOWERINGS[op].__name__})")
            _LOWERINGS[op] = fn
        return fn

    return register


def lowering_of(op: ir.Operation) -> Lowering | None:
    """The registered lowering of `op`'s class, None when there is none."""
    cls = OP_CLASSES.get(op.name)
    return None if cls is None else _LOWERINGS.get(cls)
