"""The importer's map from ONNX value names to MLIR values or numpy constants.

Initializers and Constant-node outputs stay numpy arrays until an op needs them
as a tensor operand; then they are materialized once as `wpk.weight`
(dense_resource, registered in the WeightTable) or, when tiny, `wpk.constant`.
Constants read as shapes/axes/pads never become ops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from mlir import ir

from woodpecker.dialect.weights import INLINE_MAX_ELEMENTS, WeightTable, materialize, materialize_typed
from woodpecker.graph.fold_budget import FoldBudget

__all__ = ["INLINE_MAX_ELEMENTS", "ValueMap", "is_float_array", "materialize", "sanitize_resource_name"]

_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def sanitize_resource_name(name: str) -> str:
    """An MLIR-friendly resource key: [A-Za-z0-9_], starting with a letter or '_'."""
    clean = _NOT_IDENTIFIER.sub("_", name)
    if not clean or not (clean[0].isalpha() or clean[0] == "_"):
        clean = "w_" + clean
    return clean


def is_float_array(array: np.ndarray) -> bool:
    return array.dtype.kind == "f"


@dataclass
class ValueMap:
    """ONNX value name -> MLIR value (a computed tensor) or numpy array (a known constant)."""

    weights: WeightTable = field(default_factory=WeightTable)
    fold_budget: FoldBudget = field(default_factory=FoldBudget)  # of the folds at import
    values: dict[str, ir.Value] = field(default_factory=dict)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    _materialized: dict[str, ir.Value] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.values or name in self.constants

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def set_value(self, name: str, value: ir.Value) -> None:
        self.values[name] = value

    def set_constant(self, name: str, array: np.ndarray) -> None:
        self.constants[name] = np.asarray(array)

    def tensor(self, name: str, loc: ir.Location) -> ir.Value:
        """The f32 tensor value of `name`, materializing a (float) constant on first use.

        Must be called with an insertion point set. Raises TypeError for non-float constants.
        """
        if name in self.values:
            return self.values[name]
        if name in self._materialized:
            return self._materialized[name]
        array = self.constants[name]
        if not is_float_array(array):
            raise TypeError(f"constant '{name}' has dtype {array.dtype}, not a float type")
        value = materialize(array.astype(np.float32), sanitize_resource_name(name), self.weights, loc)
        self._materialized[name] = value
        return value

    def typed_tensor(self, name: str, loc: ir.Location) -> ir.Value:
        """The tensor value of `name` in its own element type: a float constant materializes as
        f32 (float64/float16 data is converted), an integer one as i64 (an int32 one as i32),
        a bool one as i1. Raises TypeError for other dtypes (strings, complex)."""
        if name in self.values:
            return self.values[name]
        array = self.constants[name]
        if is_float_array(array):
            return self.tensor(name, loc)
        key = name + "\0typed"
        if key in self._materialized:
            return self._materialized[key]
        if array.dtype.kind not in "biu":
            raise TypeError(f"constant '{name}' has dtype {array.dtype}, which has no wpk element type")
        if array.dtype.kind in "iu" and array.dtype != np.int32:
            array = array.astype(np.int64)
        value = materialize_typed(array, loc)
        self._materialized[key] = value
        return value
