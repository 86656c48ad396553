"""The step language of the fused kernels: step kinds, steps, decoding, numpy, attributes.

`wpk.elementwise` (attributes `steps`/`params`) and the epilogues of `wpk.fused_conv2d`,
`wpk.fused_matmul` and `wpk.fused_gemm` (`epilogue`/`epilogue_params`) apply a list of steps
to a running value `v` (dialects/WpkOps.td, dialect description). A binary step takes the next
side operand, a step with parameters reads them from the kernel's concatenated parameter
array. Every step kind is registered with the op semantics that produce it (ops/elementwise.py:
the step of `wpk.relu` is `relu`, `wpk.sub` gives `sub` or, with the running value on the
right, `rsub`); `STEP_KINDS` is the resulting vocabulary, in registration order. The fusion
pass builds step lists, the verifier checks them, the lowering emits arith/math for them and
the constant folder evaluates them with `apply_steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from mlir import ir

StepFn = Callable[[np.ndarray, np.ndarray | None, tuple[float, ...]], np.ndarray]
"""numpy semantics of a step: (running value, side operand or None, parameters) -> value (float64)."""

MAX_SIDE_OPERANDS = 3
"""Side operands of a fused op (`side0`..`side2`), hence of binary steps in one kernel."""


class StepError(ValueError):
    """A malformed step list (unknown step, wrong parameter or side operand count)."""


@dataclass(frozen=True)
class StepKind:
    """One step name, its numpy semantics, whether it takes a side operand, and its parameters
    (for the step of an op: the op attributes they are read from, in order)."""

    name: str
    apply: StepFn
    binary: bool = False
    params: tuple[str, ...] = ()

    @property
    def num_params(self) -> int:
        return len(self.params)


_STEP_KINDS: dict[str, StepKind] = {}

STEP_KINDS: Mapping[str, StepKind] = MappingProxyType(_STEP_KINDS)
"""Step name -> kind, filled when the op families of `woodpecker.ops` are imported."""


def register_step(kind: StepKind) -> StepKind:
    """Adds `kind` to the vocabulary (once; registering the same kind again is a no-op)."""
    known = _STEP_KINDS.get(kind.name)
    if known is not None and known != kind:
        raise ValueError(f"step '{kind.name}' is already registered differently")
    _STEP_KINDS[kind.name] = kind
    return kind


@dataclass(frozen=True)
class Step:
    """One applied step: its name and parameters (a binary step takes the next side operand)."""

    name: str
    params: tuple[float, ...] = ()

    @property
    def kind(self) -> StepKind:
        kind = STEP_KINDS.get(self.name)
        if kind is None:
            raise StepError(f"unknown step '{self.name}' (known steps: {', '.join(STEP_KINDS)})")
        return kind

    @property
    def binary(self) -> bool:
        return self.kind.binary

    def text(self) -> str:
        args = ", ".join(f"{p:g}" for p in self.params)
        return f"{self.name}({args})" if self.params else self.name


def decode_steps(names: Sequence[str], params: Sequence[float]) -> list[Step]:
    """Step names and the concatenated parameters -> steps; raises StepError."""
    steps: list[Step] = []
    position = 0
    for name in names:
        kind = Step(name).kind
        if position + kind.num_params > len(params):
            raise StepError(f"step '{name}' needs {kind.num_params} parameter(s), but the parameters ran out")
        steps.append(Step(name, tuple(float(p) for p in params[position : position + kind.num_params])))
        position += kind.num_params
    if position != len(params):
        raise StepError(f"{len(params)} parameters given, but the steps use {position}")
    return steps


def count_binary(steps: Sequence[Step]) -> int:
    return sum(1 for step in steps if step.binary)


def apply_step(step: Step, v: np.ndarray, side: np.ndarray | None) -> np.ndarray:
    """One step on numpy arrays (numpy broadcasting for the side operand)."""
    kind = step.kind
    if kind.binary and side is None:
        raise StepError(f"step '{step.name}' has no side operand")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return kind.apply(v, side, step.params)


def apply_steps(value: np.ndarray, steps: Sequence[Step], sides: Sequence[np.ndarray]) -> np.ndarray:
    """All steps in order, binary steps taking `sides` in order."""
    remaining = list(sides)
    for step in steps:
        side = remaining.pop(0) if step.binary else None
        value = apply_step(step, value, side)
    return value


# ----------------------------------------------------------------------------
# As attributes.


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
