"""Reading the numpy arrays behind `wpk.weight` ops.

Weights live in `dense_resource` blobs. The bindings cannot read a blob back,
so the importer hands its arrays over in a `WeightTable`; for a module that was
parsed from text, `WeightTable.from_module` decodes the printed resource section.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from mlir import ir

from woodpecker.dialect import create_op, dtype_of, element_type_of, tensor_type, weight_attr
from woodpecker.errors import WeightDataError

# Constants with at most this many elements are written inline as `wpk.constant`.
INLINE_MAX_ELEMENTS = 1

_RESOURCE_ENTRY = re.compile(r'^\s*([A-Za-z0-9_.$\-]+): "0x([0-9A-Fa-f]*)",?\s*$')


def resource_name(attr: ir.Attribute) -> str:
    """'w0' for `dense_resource<w0> : tensor<...>`."""
    text = str(attr)
    return text[len("dense_resource<") : text.index(">")]


@dataclass
class WeightTable:
    """Resource name -> f32 array for the `wpk.weight` ops of one module."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_module(cls, module: ir.Module | ir.Operation) -> WeightTable:
        op = module.operation if isinstance(module, ir.Module) else module
        text = op.get_asm(large_resource_limit=None)
        table = cls()
        start = text.find("{-#")
        if start < 0:
            return table
        for line in text[start:].splitlines():
            match = _RESOURCE_ENTRY.match(line)
            if match:
                blob = bytes.fromhex(match.group(2))
                # A printed blob starts with its alignment as a little-endian u32.
                table.arrays[match.group(1)] = np.frombuffer(blob[4:], dtype=np.float32)
        return table

    def add(self, name: str, array: np.ndarray) -> None:
        self.arrays[name] = np.ascontiguousarray(array, dtype=np.float32)

    def retain(self, names: set[str]) -> None:
        """Drops the arrays of every resource not in `names` (e.g. weights folded away)."""
        for name in [n for n in self.arrays if n not in names]:
            del self.arrays[name]

    def value_of(self, op: ir.Operation | ir.OpView) -> np.ndarray:
        """The array of a `wpk.weight` or `wpk.constant` op, shaped as its result."""
        attr = op.attributes["value"]
        shape = list(ir.RankedTensorType(op.results[0].type).shape)
        if str(attr).startswith("dense_resource<"):
            name = resource_name(attr)
            array = self.arrays.get(name)
            if array is None:
                reason = f"no data for weight resource '{name}' in the module's dialect_resources"
            elif array.size != math.prod(shape):
                reason = (
                    f"weight resource '{name}' holds {array.size} f32 values, its type {shape} needs {math.prod(shape)}"
                )
            else:
                return array.reshape(shape)
            raise WeightDataError(
                f"'{op.name}' at {op.location}: {reason}", location=op.location, reason=f"'{op.name}' op {reason}"
            )
        dtype = dtype_of(ir.RankedTensorType(op.results[0].type).element_type)
        return dense_array(attr, shape).astype(dtype)


def dense_array(attr: ir.Attribute, shape: list[int]) -> np.ndarray:
    """The elements of a dense elements attribute as a numpy array of `shape`. A splat is
    expanded from its one value: numpy's view of an i1 splat's buffer unpacks one stored
    byte into 8 elements and reads past it, so it must not be used."""
    dense = ir.DenseElementsAttr(attr)
    if dense.is_splat:
        value = dense.get_splat_value()
        try:
            scalar = ir.IntegerAttr(value).value
        except ValueError:
            scalar = ir.FloatAttr(value).value
        return np.full(shape, scalar)
    return np.array(dense).reshape(shape)


def materialize(array: np.ndarray, name: str, weights: WeightTable, loc: ir.Location | None = None) -> ir.Value:
    """A `wpk.constant` (tiny arrays) or `wpk.weight` op holding the f32 `array`, at the
    current insertion point; a weight's blob is named after `name` (made unique by MLIR)
    and its array registered in `weights`. An int64, int32 or bool `array` becomes a
    `wpk.constant` of that element type whatever its size (weights are f32 blobs)."""
    array = np.asarray(array)
    if array.dtype.kind in "biu":
        return materialize_typed(array, loc)
    array = np.asarray(array, dtype=np.float32, order="C")  # keeps 0-d arrays 0-d
    with loc if loc is not None else ir.Location.unknown():
        result_type = tensor_type(array.shape)
        if array.size <= INLINE_MAX_ELEMENTS:
            attr = ir.DenseElementsAttr.get(array, shape=list(array.shape))
            return create_op("constant", [], [result_type], {"value": attr}).result
        attr = weight_attr(array, name)
        weights.add(resource_name(attr), array)
        return create_op("weight", [], [result_type], {"value": attr}).result


def materialize_typed(array: np.ndarray, loc: ir.Location | None = None) -> ir.Value:
    """A `wpk.constant` holding an int64, int32 or bool `array` inline (other integer dtypes
    are converted to int64), at the current insertion point."""
    array = np.asarray(array)
    if array.dtype.kind in "iu" and array.dtype not in (np.dtype(np.int64), np.dtype(np.int32)):
        array = array.astype(np.int64)
    array = np.asarray(array, order="C")  # not np.ascontiguousarray: that makes 0-d arrays 1-d
    with loc if loc is not None else ir.Location.unknown():
        element = element_type_of(array.dtype)
        result_type = tensor_type(array.shape, element)
        if array.dtype == np.bool_:
            attr = ir.DenseElementsAttr.get(
                np.packbits(array.reshape(-1), bitorder="little"), type=element, shape=list(array.shape)
            )
        else:
            attr = ir.DenseElementsAttr.get(array, type=element, shape=list(array.shape))
        return create_op("constant", [], [result_type], {"value": attr}).result
