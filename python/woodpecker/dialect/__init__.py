"""The `wpk` dialect: loading its IRDL definition and building its ops from Python.

The dialect is defined in dialects/WpkOps.td and translated to IRDL
(wpk.irdl.mlir beside this file); the MLIR Python bindings register it into a
context at run time with `irdl.load_dialects`. The typed op classes generated from
the same file are in `woodpecker.dialect.wpk` (registered here as the Python module
of the `wpk` namespace, so ops read from IR are views of those classes); the
signature tables (attribute kinds, operand layout) in `woodpecker.dialect.signature`.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from mlir import ir
from mlir.dialects import irdl
from mlir.dialects._ods_common import _cext

IRDL_FILE = Path(str(resources.files(__package__) / "wpk.irdl.mlir"))

# The bindings look up the Python module of an op's namespace as `<prefix>.<namespace>`:
# `woodpecker.dialect.wpk` holds the generated classes of the `wpk` ops.
if __name__ not in _cext.globals.dialect_search_modules:
    _cext.globals.append_dialect_search_prefix(__name__)


def load_wpk_dialect(context: ir.Context) -> None:
    """Registers the `wpk` dialect into `context` (idempotent per context)."""
    if context.is_registered_operation("wpk.relu"):
        return
    with context:
        module = ir.Module.parse(IRDL_FILE.read_text())
        irdl.load_dialects(module)


def create_context() -> ir.Context:
    """A fresh MLIR context with every upstream dialect and `wpk` registered."""
    context = ir.Context()
    load_wpk_dialect(context)
    return context


def op_names() -> list[str]:
    """All `wpk` op names declared in the IRDL file, e.g. 'wpk.conv2d'."""
    names = []
    for line in IRDL_FILE.read_text().splitlines():
        line = line.strip()
        if line.startswith("irdl.operation @"):
            names.append("wpk." + line.split("@", 1)[1].split()[0])
    return names


# ----------------------------------------------------------------------------
# Attribute helpers (need an active context).


def i64_attr(value: int) -> ir.Attribute:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), int(value))


def bool_attr(value: bool) -> ir.Attribute:
    return ir.BoolAttr.get(bool(value))


def f32_attr(value: float) -> ir.Attribute:
    return ir.FloatAttr.get(ir.F32Type.get(), float(value))


def i64_array_attr(values: Sequence[int]) -> ir.Attribute:
    return ir.DenseI64ArrayAttr.get([int(v) for v in values])


def str_attr(value: str) -> ir.Attribute:
    return ir.StringAttr.get(value)


def python_attr(value: bool | int | float | str | Sequence[int]) -> ir.Attribute:
    """The `wpk` attribute for a Python value: bool, i64, f32, string or i64 array."""
    if isinstance(value, bool):
        return bool_attr(value)
    if isinstance(value, int):
        return i64_attr(value)
    if isinstance(value, float):
        return f32_attr(value)
    if isinstance(value, str):
        return str_attr(value)
    return i64_array_attr(value)


def tensor_type(shape: Sequence[int], element: ir.Type | None = None) -> ir.RankedTensorType:
    return ir.RankedTensorType.get([int(d) for d in shape], element or ir.F32Type.get())


# The element types a `wpk` tensor may have and their numpy dtypes (f32 for most ops; the
# integer, bool and indexing ops also take i64, i32 and i1).
ELEMENT_DTYPES: dict[str, np.dtype] = {
    "f32": np.dtype(np.float32),
    "i64": np.dtype(np.int64),
    "i32": np.dtype(np.int32),
    "i1": np.dtype(np.bool_),
}


def element_type_of(dtype: np.dtype | type) -> ir.Type:
    """The MLIR element type of numpy `dtype` (float32, int64, int32, bool; needs a context);
    ValueError for any other."""
    dtype = np.dtype(dtype)
    for name, candidate in ELEMENT_DTYPES.items():
        if candidate == dtype:
            return ir.F32Type.get() if name == "f32" else ir.IntegerType.get_signless(int(name[1:]))
    raise ValueError(f"dtype {dtype} is not a wpk element type (float32, int64, int32, bool)")


def dtype_of(element: ir.Type) -> np.dtype:
    """The numpy dtype of a `wpk` element type (f32, i64, i32, i1); ValueError for any other."""
    from woodpecker.dialect.signature import element_name

    name = element_name(element)
    if name not in ELEMENT_DTYPES:
        raise ValueError(f"element type {element} is not a wpk element type (f32, i64, i32, i1)")
    return ELEMENT_DTYPES[name]


def value_dtype(value: ir.Value) -> np.dtype:
    """The numpy dtype of a tensor value's elements."""
    return dtype_of(ir.RankedTensorType(value.type).element_type)


def create_op(
    name: str,
    operands: Sequence[ir.Value],
    result_types: Sequence[ir.Type],
    attributes: dict[str, ir.Attribute] | None = None,
    loc: ir.Location | None = None,
) -> ir.Operation:
    """Creates a `wpk` op (generic form; the dialect is IRDL-defined)."""
    if not name.startswith("wpk."):
        name = "wpk." + name
    return ir.Operation.create(
        name,
        results=list(result_types),
        operands=list(operands),
        attributes=attributes or {},
        loc=loc,
    )


def weight_attr(array: np.ndarray, name: str) -> ir.Attribute:
    """A dense_resource attribute holding `array` (f32) without printing it inline."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    return ir.DenseResourceElementsAttr.get_from_buffer(array, name, tensor_type(array.shape), alignment=64)


# ----------------------------------------------------------------------------
# Attribute readers.


def attr_ints(op: ir.Operation | ir.OpView, name: str) -> list[int]:
    return list(ir.DenseI64ArrayAttr(op.attributes[name]))


def attr_int(op: ir.Operation | ir.OpView, name: str) -> int:
    return ir.IntegerAttr(op.attributes[name]).value


def attr_bool(op: ir.Operation | ir.OpView, name: str) -> bool:
    return bool(ir.IntegerAttr(op.attributes[name]).value)


def attr_float(op: ir.Operation | ir.OpView, name: str) -> float:
    return ir.FloatAttr(op.attributes[name]).value


def attr_str(op: ir.Operation | ir.OpView, name: str) -> str:
    return ir.StringAttr(op.attributes[name]).value


def shape_of(value: ir.Value) -> list[int]:
    return list(ir.RankedTensorType(value.type).shape)
