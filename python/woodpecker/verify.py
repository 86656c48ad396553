"""The `wpk-verify` pass: checks on `wpk` ops that the IRDL definition cannot express.

IRDL checks operand/result counts and the base kind of every type and attribute
(`!builtin.tensor`, `#builtin.integer`, ...). This pass checks the rest of the
contract in docs/DESIGN.md and dialects/WpkOps.td:

* every operand and result of a `wpk` op is a ranked, statically shaped tensor of an element
  type its ODS constraint allows (f32 for most ops; `ELEMENT_TYPES`, generated from the .td),
  and the op's own element-type rule holds (both sides of a compare alike, ...);
* attribute element kinds: I64Attr is a 64-bit integer, BoolAttr an i1, F32Attr an
  f32 float, DenseI64ArrayAttr an `array<i64: ...>` (the kinds of every op's attributes are
  generated from the .td: `ATTRIBUTE_KINDS`, woodpecker/dialect/_wpk_tables_gen.py);
* the op's own rules, from its semantics entry (woodpecker.ops, keyed by op class): ranks,
  attribute lengths and value ranges (conv2d/pools are 4-D with 2 strides, 2 dilations and
  4 pads, axes are in range, ...), and that the result shape is the one the op's semantics
  give; for fused kernels, known steps with the right number of parameters, one side operand
  per binary step, side operands that broadcast to the result.

Every failure is reported as an MLIR error diagnostic at the op's location
(`'wpk.conv2d' op ...`, as an ODS verifier would) and the pass fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlir import ir

from woodpecker.dialect import dtype_of
from woodpecker.dialect.signature import (
    ATTRIBUTE_KINDS,
    ELEMENT_TYPES,
    SignatureError,
    attribute_values,
    element_name,
    split_operands,
)
from woodpecker.dialect.wpk import OP_CLASSES
from woodpecker.ops import OpArgs, ShapeRuleError, semantics_of
from woodpecker.ops.rules import broadcast_shapes
from woodpecker.ops.shape import PAD_MODES

__all__ = [
    "ATTRIBUTE_KINDS",
    "PAD_MODES",
    "VerificationFailure",
    "broadcast_shapes",
    "verify_module",
    "verify_op",
    "wpk_verify_pass",
]

_KIND_TEXT = {
    "i64": "a 64-bit signless integer attribute (I64Attr)",
    "bool": "a bool attribute (i1, BoolAttr)",
    "f32": "a 32-bit float attribute (F32Attr)",
    "i64s": "an i64 dense array attribute (array<i64: ...>)",
    "str": "a string attribute",
    "strs": "an array of string attributes",
    "f32s": "an f32 dense array attribute (array<f32: ...>)",
}


@dataclass(frozen=True)
class VerificationFailure:
    """A failed check on one op: where and why."""

    location: ir.Location
    op_name: str
    message: str

    def text(self) -> str:
        return f"'{self.op_name}' op {self.message}"


# ----------------------------------------------------------------------------
# Types and attributes.


def _static_tensor_of(t: ir.Type, elements: tuple[str, ...]) -> bool:
    return isinstance(t, ir.RankedTensorType) and t.has_static_shape and element_name(t.element_type) in elements


def _value_constraints(op: ir.Operation) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """The element types allowed for each operand and each result of `op`, by position
    (f32 where the op is not in ELEMENT_TYPES or its operands do not fit its signature)."""
    allowed = ELEMENT_TYPES.get(op.name)
    f32 = ("f32",)
    if allowed is None:
        return [f32] * len(op.operands), [f32] * len(op.results)
    try:
        names = split_operands(op, list(range(len(op.operands))))
    except SignatureError:
        return [f32] * len(op.operands), [f32] * len(op.results)
    operands: list[tuple[str, ...]] = [f32] * len(op.operands)
    for name, position in names.items():
        if position is not None:
            operands[position] = allowed[name]
    result_names = [name for name in allowed if name not in names]
    results = [allowed[name] if i < len(result_names) else f32 for i, name in enumerate(result_names)]
    return operands, results[: len(op.results)] + [f32] * (len(op.results) - len(results))


def _elements_rule_failure(op: ir.Operation) -> str | None:
    """The failed element-type rule of the op's semantics (both sides of a compare alike, ...)."""
    if op.name not in OP_CLASSES or not op.results:
        return None
    try:
        operands = split_operands(op)
    except SignatureError as err:
        return str(err)
    elements = {
        name: element_name(ir.RankedTensorType(value.type).element_type)
        for name, value in operands.items()
        if value is not None
    }
    try:
        semantics_of(op.name).check_elements(
            elements, element_name(ir.RankedTensorType(op.results[0].type).element_type)
        )
    except ShapeRuleError as err:
        return str(err)
    except KeyError:
        return None
    return None


def _shape(value: ir.Value) -> list[int]:
    return list(ir.RankedTensorType(value.type).shape)


def _attr_ok(attr: ir.Attribute, kind: str) -> bool:
    if kind == "i64" or kind == "bool":
        if not isinstance(attr, ir.IntegerAttr | ir.BoolAttr):
            return False
        itype = ir.IntegerAttr(attr).type
        width = 64 if kind == "i64" else 1
        return isinstance(itype, ir.IntegerType) and itype.width == width and itype.is_signless
    if kind == "f32":
        return isinstance(attr, ir.FloatAttr) and isinstance(attr.type, ir.F32Type)
    if kind == "i64s":
        return isinstance(attr, ir.DenseI64ArrayAttr)
    if kind == "str":
        return isinstance(attr, ir.StringAttr)
    if kind == "strs":
        return isinstance(attr, ir.ArrayAttr) and all(isinstance(a, ir.StringAttr) for a in attr)
    if kind == "f32s":
        return isinstance(attr, ir.DenseF32ArrayAttr)
    return True


def _shape_args(op: ir.Operation) -> OpArgs[list[int]]:
    """The op's operand shapes by name, its attributes as Python values and its result shape."""
    shapes = split_operands(op, [_shape(v) for v in op.operands])
    result = tuple(_shape(op.results[0])) if op.results else None
    dtype = None
    if op.results:
        try:
            dtype = dtype_of(ir.RankedTensorType(op.results[0].type).element_type)
        except ValueError:
            dtype = None
    return OpArgs(shapes, attribute_values(op), result, dtype)


def verify_op(op: ir.Operation) -> str | None:
    """The first failed check of one `wpk` op (without the op prefix), or None."""
    name = op.name
    operand_types, result_types = _value_constraints(op)
    for i, (value, elements) in enumerate(zip(op.operands, operand_types, strict=True)):
        if not _static_tensor_of(value.type, elements):
            return f"operand #{i} must be a statically shaped {' or '.join(elements)} tensor, but got {value.type}"
    for i, (value, elements) in enumerate(zip(op.results, result_types, strict=True)):
        if not _static_tensor_of(value.type, elements):
            return f"result #{i} must be a statically shaped {' or '.join(elements)} tensor, but got {value.type}"
    failure = _elements_rule_failure(op)
    if failure is not None:
        return failure
    for attr_name, kind in ATTRIBUTE_KINDS.get(name, {}).items():
        if attr_name not in op.attributes:
            return f"attribute '{attr_name}' is required"
        attr = op.attributes[attr_name]
        if not _attr_ok(attr, kind):
            return f"attribute '{attr_name}' must be {_KIND_TEXT[kind]}, but got {attr}"
    if name not in OP_CLASSES:
        return None
    try:
        semantics_of(name).verify(_shape_args(op))
    except (ShapeRuleError, SignatureError) as err:
        return str(err)
    return None


def verify_module(root: ir.Operation) -> list[VerificationFailure]:
    """Checks every `wpk` op nested in `root`; returns the failures in IR order."""
    failures: list[VerificationFailure] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name.startswith("wpk."):
            message = verify_op(op)
            if message is not None:
                failures.append(VerificationFailure(op.location, op.name, message))
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    return failures


def wpk_verify_pass(op: ir.Operation, pass_: Any) -> None:
    """The `wpk-verify` pass: emits one error per failing op, then fails the pass."""
    failures = verify_module(op)
    for failure in failures:
        failure.location.emit_error(failure.text())
    if failures:
        pass_.signal_pass_failure()
