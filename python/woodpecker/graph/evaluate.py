"""Evaluating a `wpk` op on constant operands, for constant folding.

`evaluate(op, arrays)` computes the result of `op` from the arrays of its operands (in
operand order) with the op's numpy semantics (woodpecker.ops, float64; integer and bool
operands keep their dtype) and returns it in the element type of the op's result type
(float32, int64, int32 or bool) and its shape. The op's attributes and result type are
trusted (the module passed wpk-verify or came from the importer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mlir import ir

from woodpecker.dialect import value_dtype
from woodpecker.dialect.signature import SignatureError, attribute_values, split_operands
from woodpecker.dialect.wpk import OP_CLASSES
from woodpecker.graph.rewrite import shape
from woodpecker.ops import NotEvaluable, OpArgs, ShapeRuleError, StepError, semantics_of

Arrays = Sequence[np.ndarray]


class NotFoldable(ValueError):
    """The op has no numpy evaluation."""


def evaluate(op: ir.Operation, arrays: Arrays) -> np.ndarray:
    """The result of `op` on operand arrays (float data computed in float64), of the dtype of its
    result type; raises NotFoldable."""
    if op.name not in OP_CLASSES:
        raise NotFoldable(f"no numpy evaluation for '{op.name}'")
    out = shape(op.results[0])
    try:
        operands = split_operands(op, [_operand(x) for x in arrays])
        args = OpArgs(operands, attribute_values(op), tuple(out), value_dtype(op.results[0]))
        result = semantics_of(op.name).run(args)
    except (NotEvaluable, SignatureError, ShapeRuleError, StepError) as err:
        raise NotFoldable(f"'{op.name}': {err}") from None
    if list(result.shape) != out:
        raise NotFoldable(f"numpy evaluation of '{op.name}' gave shape {list(result.shape)}, expected {out}")
    return result.astype(value_dtype(op.results[0]))


def _operand(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return array if array.dtype.kind in "biu" else array.astype(np.float64)
