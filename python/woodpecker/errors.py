"""Exceptions raised by Woodpecker. Every message names what failed and why."""

from __future__ import annotations


class WoodpeckerError(Exception):
    """Base class of every error Woodpecker raises on purpose."""


class ModelLoadError(WoodpeckerError):
    """The ONNX model cannot be read or is malformed (one-line message)."""


class UnsupportedOperatorError(WoodpeckerError):
    """An ONNX node uses an op type or attribute value Woodpecker does not handle."""

    def __init__(self, op_type: str, node_name: str, reason: str, supported: list[str] | None = None):
        self.op_type = op_type
        self.node_name = node_name
        self.reason = reason
        self.supported = sorted(supported or [])
        msg = f"node '{node_name}' (op {op_type}): {reason}"
        if self.supported:
            msg += f". Supported ops: {', '.join(self.supported)}"
        super().__init__(msg)


class ShapeError(WoodpeckerError):
    """A tensor shape is dynamic, symbolic or otherwise cannot be compiled."""


class CompilationError(WoodpeckerError):
    """An MLIR pass pipeline or the JIT failed on a module.

    `location`: where in the IR it failed, when known (an `mlir.ir.Location`, typed loosely
    because this module imports no MLIR); a pass reports the error there as a diagnostic
    whose text is `reason` (the message without the location), as mlir-opt would.
    """

    def __init__(self, message: str, *, location: object | None = None, reason: str | None = None):
        super().__init__(message)
        self.location = location
        self.reason = reason if reason is not None else message


class WeightDataError(CompilationError):
    """A `wpk.weight` whose data is missing or does not fit its type (a module parsed from text)."""


class InputError(WoodpeckerError, ValueError):
    """A model was run with feeds or output names it cannot take (names, types, dtypes or
    shapes): the message names the input or output and what differs. Also a ValueError, as
    the checks before it raised."""


class MemoryLimitError(WoodpeckerError):
    """The model's activations (or one buffer of them) do not fit in the memory it may use."""
