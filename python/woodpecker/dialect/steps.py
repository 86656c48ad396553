"""The step language of the fused `wpk` kernels (dialects/WpkOps.td, dialect description).

`wpk.elementwise` (attributes `steps`/`params`) and the epilogues of
`wpk.fused_conv2d`, `wpk.fused_matmul` and `wpk.fused_gemm` (`epilogue`/
`epilogue_params`) apply a list of steps to a running value `v`. Binary steps
take the next side operand; `leaky_relu` and `clip` take parameters. This
module is the one place that knows the vocabulary: the fusion pass builds step
lists, the verifier checks them, the lowering emits arith/math for them and the
constant folder evaluates them with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from mlir import ir


@dataclass(frozen=True)
class StepKind:
    """One step name: whether it consumes a side operand and how many parameters."""

    name: str
    binary: bool = False
    num_params: int = 0


STEP_KINDS: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        StepKind("add", binary=True),
        StepKind("sub", binary=True),
        StepKind("mul", binary=True),
        StepKind("div", binary=True),
        StepKind("rsub", binary=True),
        StepKind("rdiv", binary=True),
        StepKind("relu"),
        StepKind("sigmoid"),
        StepKind("tanh"),
        StepKind("silu"),
        StepKind("leaky_relu", num_params=1),
        StepKind("clip", num_params=2),
    )
}

MAX_SIDE_OPERANDS = 3
"""Side operands of a fused op (`side0`..`side2`), hence of binary steps in one kernel."""

# Binary `wpk` ops and the step for each operand position of the running value.
BINARY_OP_STEPS: dict[str, tuple[str, str]] = {
    "wpk.add": ("add", "add"),
    "wpk.sub": ("sub", "rsub"),
    "wpk.mul": ("mul", "mul"),
    "wpk.div": ("div", "rdiv"),
}
UNARY_OP_STEPS: dict[str, str] = {
    "wpk.relu": "relu",
    "wpk.sigmoid": "sigmoid",
    "wpk.tanh": "tanh",
    "wpk.leaky_relu": "leaky_relu",
    "wpk.clip": "clip",
}


@dataclass(frozen=True)
class Step:
    """One applied step: its name and parameters (a binary step takes the next side operand)."""

    name: str
    params: tuple[float, ...] = ()

    @property
    def binary(self) -> bool:
        return STEP_KINDS[self.name].binary

    def text(self) -> str:
        args = ", ".join(f"{p:g}" for p in self.params)
        return f"{self.name}({args})" if self.params else self.name


class StepError(ValueError):
    """A malformed step list (unknown step, wrong parameter or side operand count)."""


def unary_op_step(op: ir.Operation | ir.OpView) -> Step:
    """The step of a unary `wpk` op (relu, sigmoid, tanh, leaky_relu, clip) with its parameters."""
    name = UNARY_OP_STEPS[op.name]
    params: tuple[float, ...] = ()
    if name == "leaky_relu":
        params = (ir.FloatAttr(op.attributes["alpha"]).value,)
    elif name == "clip":
        params = (ir.FloatAttr(op.attributes["min"]).value, ir.FloatAttr(op.attributes["max"]).value)
    return Step(name, params)


def decode_steps(names: Sequence[str], params: Sequence[float]) -> list[Step]:
    """Step names and the concatenated parameters -> steps; raises StepError."""
    steps: list[Step] = []
    position = 0
    for name in names:
        kind = STEP_KINDS.get(name)
        if kind is None:
            raise StepError(f"unknown step '{name}' (known steps: {', '.join(STEP_KINDS)})")
        if position + kind.num_params > len(params):
            raise StepError(f"step '{name}' needs {kind.num_params} parameter(s), but the parameters ran out")
        steps.append(Step(name, tuple(float(p) for p in params[position : position + kind.num_params])))
        position += kind.num_params
    if position != len(params):
        raise StepError(f"{len(params)} parameters given, but the steps use {position}")
    return steps


def count_binary(steps: Sequence[Step]) -> int:
    return sum(1 for step in steps if step.binary)


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


# ----------------------------------------------------------------------------
# Numpy semantics (used by constant folding; float64 in, float64 out).


def _sigmoid(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


def apply_step(step: Step, v: np.ndarray, side: np.ndarray | None) -> np.ndarray:
    """One step on numpy arrays (numpy broadcasting for the side operand)."""
    name = step.name
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "add":
            return v + side
        if name == "sub":
            return v - side
        if name == "mul":
            return v * side
        if name == "div":
            return v / side
        if name == "rsub":
            return side - v
        if name == "rdiv":
            return side / v
    if name == "relu":
        return np.maximum(v, 0.0)
    if name == "sigmoid":
        return _sigmoid(v)
    if name == "tanh":
        return np.tanh(v)
    if name == "silu":
        return v * _sigmoid(v)
    if name == "leaky_relu":
        return np.where(v >= 0, v, v * step.params[0])
    if name == "clip":
        lo, hi = step.params
        return np.minimum(np.maximum(v, lo), hi)
    raise StepError(f"unknown step '{name}'")


def apply_steps(value: np.ndarray, steps: Sequence[Step], sides: Sequence[np.ndarray]) -> np.ndarray:
    """All steps in order, binary steps taking `sides` in order."""
    remaining = list(sides)
    for step in steps:
        side = remaining.pop(0) if step.binary else None
        value = apply_step(step, value, side)
    return value
