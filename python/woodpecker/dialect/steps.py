"""The step language of the fused `wpk` kernels, on IR (dialects/WpkOps.td, dialect description).

`wpk.elementwise` (attributes `steps`/`params`) and the epilogues of `wpk.fused_conv2d`,
`wpk.fused_matmul` and `wpk.fused_gemm` (`epilogue`/`epilogue_params`) apply a list of steps
to a running value `v`. Binary steps take the next side operand; some steps take parameters.

The vocabulary (`STEP_KINDS`), `Step`, decoding and the numpy semantics (`apply_step`) are the
op semantics' (woodpecker/ops/steps.py; every elementwise op's entry in ops/elementwise.py
registers its step) and are re-exported here. This module adds the IR side: steps as
attributes, and the step an elementwise `wpk` op becomes.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlir import ir

from woodpecker.dialect.signature import attribute_values
from woodpecker.dialect.wpk import OP_CLASSES
from woodpecker.ops import semantics_of
from woodpecker.ops.steps import (
    MAX_SIDE_OPERANDS,
    STEP_KINDS,
    Step,
    StepError,
    StepKind,
    apply_step,
    apply_steps,
    count_binary,
    decode_steps,
)

__all__ = [
    "MAX_SIDE_OPERANDS",
    "STEP_KINDS",
    "Step",
    "StepError",
    "StepKind",
    "apply_step",
    "apply_steps",
    "count_binary",
    "decode_steps",
    "op_step",
    "read_steps",
    "step_op_names",
    "steps_attrs",
]


def step_op_names() -> list[str]:
    """The `wpk` ops that are a step (the elementwise ops wpk-fuse can chain), in name order."""
    return sorted(name for name in OP_CLASSES if semantics_of(name).step is not None)


def op_step(op: ir.Operation | ir.OpView, position: int = 0) -> Step | None:
    """The step of an elementwise `wpk` op (parameters from its attributes) with the running
    value as its operand `position`; None when `op` is no step from that operand."""
    op = op.operation
    if op.name not in OP_CLASSES:
        return None
    return semantics_of(op.name).op_step(attribute_values(op), position)


# ----------------------------------------------------------------------------
# Attributes.


def steps_attrs(steps: Sequence[Step]) -> tuple[ir.Attribute, ir.Attribute]:
    """(array of step names, array<f32: params>) for `steps` (an active context is needed)."""
    names = ir.ArrayAttr.get([ir.StringAttr.get(step.name) for step in steps])
    params = ir.DenseF32ArrayAttr.get([p for step in steps for p in step.params])
    return names, params


def read_steps(op: ir.Operation | ir.OpView, names_attr: str, params_attr: str) -> list[Step]:
    """The steps held in attributes `names_attr`/`params_attr` of `op`; raises StepError."""
    attrs = op.attributes
    if names_attr not in attrs or params_attr not in attrs:
        raise StepError(f"attributes '{names_attr}' and '{params_attr}' are required")
    names = attrs[names_attr]
    if not isinstance(names, ir.ArrayAttr) or not all(isinstance(a, ir.StringAttr) for a in names):
        raise StepError(f"attribute '{names_attr}' must be an array of strings, got {names}")
    params = attrs[params_attr]
    if not isinstance(params, ir.DenseF32ArrayAttr):
        raise StepError(f"attribute '{params_attr}' must be an array<f32: ...>, got {params}")
    return decode_steps([ir.StringAttr(a).value for a in names], list(params))
