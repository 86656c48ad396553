"""Data ops: `wpk.weight` (a dense_resource blob) and `wpk.constant` (inline dense elements).

Their result is their `value`; they have no numpy evaluation here (the arrays live in the
module's WeightTable, woodpecker.dialect.weights).
"""

from __future__ import annotations

from mlir import ir

from woodpecker.dialect import element_type_of, tensor_type, wpk
from woodpecker.ops.args import OpArgs, Shape
from woodpecker.ops.registry import OpSemantics, register
from woodpecker.ops.rules import fail


def check_value(args: OpArgs[Shape]) -> None:
    """The `value` attribute has exactly the result type (f32; a constant may be i64, i32, i1)."""
    attr: ir.Attribute = args.attr("value")
    with ir.Location.unknown(attr.context):
        element = element_type_of(args.result_dtype) if args.result_dtype is not None else None
        result_type = tensor_type(args.result or (), element)
    if attr.type != result_type:
        fail(f"'value' has type {attr.type}, but the result type is {result_type}")


register(OpSemantics(wpk.WeightOp, check=check_value))
register(OpSemantics(wpk.ConstantOp, check=check_value))
