"""Evaluating a `wpk` op on constant operands, for constant folding.

`evaluate(op, arrays)` computes the result of `op` from the arrays of its operands (in
operand order) with the op's numpy semantics (woodpecker.ops, float64) and returns it as
float32 in the shape of the op's result type. The op's attributes and result type are
trusted (the module passed wpk-verify or came from the importer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mlir import ir

from woodpecker.dialect.signature import SignatureError, attribute_values, split_operands
from woodpecker.dialect.wpk import OP_CLASSES
from woodpecker.graph.rewrite import shape
from woodpecker.ops import NotEvaluable, OpArgs, ShapeRuleError, StepError, semantics_of

Arrays = Sequence[np.ndarray]


class NotFoldable(ValueError):
    """The op has no numpy evaluation."""


def evaluate(op: ir.Operation, arrays: Arrays) -> np.ndarray:
    """The f32 result of `op` on operand arrays (computed in float64); raises NotFoldable."""
    if op.name not in OP_CLASSES:
        raise NotFoldable(f"no numpy evaluation for '{op.name}'")
    out = shape(op.results[0])
    try:
        operands = split_operands(op, [np.asarray(x, dtype=np.float64) for x in arrays])
        result = semantics_of(op.name).run(OpArgs(operands, attribute_values(op), tuple(out)))
    except (NotEvaluable, SignatureError, ShapeRuleError, StepError) as err:
        raise NotFoldable(f"'{op.name}': {err}") from None
    if list(result.shape) != out:
        raise NotFoldable(f"numpy evaluation of '{op.name}' gave shape {list(result.shape)}, expected {out}")
    return result.astype(np.float32)
