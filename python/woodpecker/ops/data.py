"""Data ops: `wpk.weight` (a dense_resource blob) and `wpk.constant` (inline dense elements).

Their result is their `value`; they have no numpy evaluation here (the arrays live in the
module's WeightTable, woodpecker.dialect.weights).
"""

from __future__ import annotations

from mlir import ir

from woodpecker.dialect import tensor_type, wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import fail


def check_value(args: OpArgs[Shape]) -> None:
    """The `value` attribute has exactly the (f32 tensor) result type."""
    attr: ir.Attribute = args.attr("value")
    with ir.Location.unknown(attr.context):
        result_type = tensor_type(args.result or ())
    if attr.type != result_type:
        fail(f"'value' has type {attr.type}, but the result type is {result_type}")


register(OpSemantics(wpk.WeightOp, check=check_value))
register(OpSemantics(wpk.ConstantOp, check=check_value))
