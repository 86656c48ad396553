"""`NodeContext`: what a converter sees of one ONNX node.

It gives typed access to attributes, operands (as MLIR values or numpy
constants), result shapes (computed, or from ONNX shape inference), and builds
`wpk` ops through their generated classes at the node's location.
Errors it raises name the node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from mlir import ir

from woodpecker.dialect import element_type_of, shape_of, tensor_type, value_dtype
from woodpecker.dialect.wpk import OpClass
from woodpecker.errors import ShapeError, UnsupportedOperatorError
from woodpecker.importer.values import ValueMap

# ONNX element types a run-time tensor may have, and their numpy dtypes.
_RUNTIME_ELEMENTS = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.BOOL: np.bool_,
}


@dataclass(frozen=True)
class ValueInfo:
    """What ONNX shape inference knows about one value."""

    elem_type: int
    shape: tuple[int, ...] | None  # None: unknown or not fully static

    @property
    def type_name(self) -> str:
        return onnx.TensorProto.DataType.Name(self.elem_type)


def read_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """Attribute name -> Python value (strings decoded, tensors as numpy arrays)."""
    attrs: dict[str, Any] = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, onnx.TensorProto):
            value = onnx.numpy_helper.to_array(value)
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8") for v in value]
        attrs[attr.name] = value
    return attrs


@dataclass
class NodeContext:
    """One ONNX node during conversion."""

    node: onnx.NodeProto
    name: str
    opset: int
    values: ValueMap
    infos: dict[str, ValueInfo]
    used: set[str]
    supported: Sequence[str]
    attrs: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.attrs = read_attributes(self.node)

    # -- identity ---------------------------------------------------------

    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def loc(self) -> ir.Location:
        return ir.Location.name(self.name)

    def unsupported(self, reason: str) -> UnsupportedOperatorError:
        return UnsupportedOperatorError(self.op_type, self.name, reason, supported=list(self.supported))

    def shape_error(self, reason: str) -> ShapeError:
        return ShapeError(f"node '{self.name}' (op {self.op_type}): {reason}")

    # -- attributes ---------------------------------------------------------

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def attr_ints(self, name: str, default: Sequence[int] | None = None) -> list[int] | None:
        value = self.attrs.get(name)
        if value is None:
            return None if default is None else [int(v) for v in default]
        return [int(v) for v in value]

    # -- inputs -------------------------------------------------------------

    def has_input(self, index: int) -> bool:
        return index < len(self.node.input) and self.node.input[index] != ""

    def input_name(self, index: int) -> str:
        return self.node.input[index]

    def is_constant(self, index: int) -> bool:
        return self.has_input(index) and self.values.is_constant(self.input_name(index))

    def constant(self, index: int, what: str) -> np.ndarray:
        """Input `index` read as a numpy array; it must be an initializer or Constant output."""
        if not self.has_input(index):
            raise self.unsupported(f"input {what} is missing")
        name = self.input_name(index)
        if not self.values.is_constant(name):
            raise self.unsupported(
                f"input {what} ('{name}') must be a constant (initializer or Constant node), it is computed at run time"
            )
        return self.values.constants[name]

    def optional_constant(self, index: int, what: str) -> np.ndarray | None:
        return self.constant(index, what) if self.has_input(index) else None

    def tensor(self, index: int) -> ir.Value:
        """Input `index` as an f32 tensor value (materializing constants); an input of another
        element type is an error naming it (the ops of other families take f32 only)."""
        if not self.has_input(index):
            raise self.unsupported(f"required input {index} is missing")
        name = self.input_name(index)
        if not self.values.has(name):
            raise self.unsupported(f"input '{name}' is not produced by any node or graph input")
        if name in self.values.values and value_dtype(self.values.values[name]) != np.float32:
            dtype = value_dtype(self.values.values[name])
            raise self.unsupported(f"input '{name}' is {dtype} data at run time; {self.op_type} takes float32 only")
        try:
            return self.values.tensor(name, self.loc)
        except TypeError:
            dtype = self.values.constants[name].dtype
            raise self.unsupported(f"input '{name}' holds {dtype} data; only float32 tensors are supported") from None

    def typed_tensor(self, index: int) -> ir.Value:
        """Input `index` as a tensor value of its own element type (f32, i64, i32 or i1; a
        constant of another integer type becomes i64), for the ops that take them."""
        if not self.has_input(index):
            raise self.unsupported(f"required input {index} is missing")
        name = self.input_name(index)
        if not self.values.has(name):
            raise self.unsupported(f"input '{name}' is not produced by any node or graph input")
        try:
            return self.values.typed_tensor(name, self.loc)
        except TypeError as error:
            raise self.unsupported(f"input '{name}': {error}") from None

    def input_dtype(self, index: int) -> np.dtype:
        """The numpy dtype of input `index` (a constant's array or a run-time value's elements)."""
        name = self.input_name(index)
        if self.values.is_constant(name):
            return self.values.constants[name].dtype
        return value_dtype(self.values.values[name])

    def input_shape(self, index: int) -> list[int]:
        name = self.input_name(index)
        if self.values.is_constant(name):
            return list(self.values.constants[name].shape)
        return shape_of(self.values.values[name])

    # -- outputs ------------------------------------------------------------

    def output_used(self, index: int) -> bool:
        return index < len(self.node.output) and self.node.output[index] != "" and self.node.output[index] in self.used

    def output_shape(
        self, index: int, computed: Callable[[], Sequence[int]] | None = None, dtype: np.dtype | None = None
    ) -> list[int]:
        """The static shape of output `index`; also requires the output to be float32 (or, when
        given, of `dtype`: what the converter computes).

        `computed` derives it from the operand shapes and attributes; where it is given it
        wins over ONNX shape inference, which is used when it is not. (ONNX inference can
        disagree with onnxruntime, e.g. for ceil_mode pooling whose last window would start
        in the padding, and a wrong shape there would poison every later inferred shape.)
        """
        name = self.node.output[index]
        info = self.infos.get(name)
        if dtype is None and info is not None and info.elem_type not in (0, onnx.TensorProto.FLOAT):
            raise self.unsupported(f"output '{name}' has element type {info.type_name}; only float32 data is supported")
        if dtype is not None and info is not None and info.elem_type in _RUNTIME_ELEMENTS:
            declared = np.dtype(_RUNTIME_ELEMENTS[info.elem_type])
            if declared != np.dtype(dtype):
                raise self.unsupported(
                    f"output '{name}' has element type {info.type_name}; the conversion computes {np.dtype(dtype)}"
                )
        if computed is not None:
            return [int(d) for d in self.compute(computed)]
        if info is None or info.shape is None:
            raise self.shape_error(f"the shape of output '{name}' is unknown or not static")
        return list(info.shape)

    # -- building -----------------------------------------------------------

    def emit(self, op: OpClass, shape: Sequence[int], *operands: ir.Value, **kwargs: Any) -> ir.Value:
        """Builds one `wpk` op with a single f32 result of `shape` at this node's location, through
        its typed class (woodpecker.dialect.wpk): positional operands, then its attributes and
        optional operands by name (MLIR attributes or Python values)."""
        return op(tensor_type(shape), *operands, **kwargs, loc=self.loc).result

    def emit_typed(
        self, op: OpClass, shape: Sequence[int], dtype: np.dtype, *operands: ir.Value, **kwargs: Any
    ) -> ir.Value:
        """`emit` with a result of element type `dtype` (float32, int64, int32 or bool)."""
        return op(tensor_type(shape, element_type_of(dtype)), *operands, **kwargs, loc=self.loc).result

    def compute(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Calls a shape function; its ValueError becomes a ShapeError naming the node."""
        try:
            return fn(*args)
        except ValueError as error:
            raise self.shape_error(str(error)) from None

    def check(self, condition: bool, reason: str) -> None:
        """Raises a ShapeError naming the node unless `condition`."""
        if not condition:
            raise self.shape_error(reason)

    def shape_of(self, value: ir.Value) -> list[int]:
        return shape_of(value)
