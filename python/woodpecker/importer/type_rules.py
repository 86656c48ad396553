"""ONNX's type rules, checked for every node in one place: each input's element type must be one
its op's schema allows (`onnx.defs.get_schema(op, opset)`: the formal parameter's type or its
type constraint), and inputs bound to one type parameter (`T` of Conv's X, W and B) must have
one type. The checker and shape inference accept e.g. an fp16 weight on an fp32 Conv; the
converters would silently cast it.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import defs

from woodpecker.errors import ModelLoadError


def element_types(model: onnx.ModelProto) -> dict[str, str]:
    """Value name -> ONNX type string ('tensor(float)') of every tensor whose type is known
    (graph inputs, initializers, inferred values, outputs)."""
    graph = model.graph
    types: dict[str, str] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
            types[value.name] = _type_string(value.type.tensor_type.elem_type)
    for init in graph.initializer:
        types[init.name] = _type_string(init.data_type)
    return types


def _type_string(elem_type: int) -> str:
    return f"tensor({onnx.TensorProto.DataType.Name(elem_type).lower()})"


@dataclass(frozen=True)
class _Binding:
    """The first input bound to a type parameter: its position, name and type."""

    index: int
    name: str
    type: str


def check_node_types(node: onnx.NodeProto, name: str, opset: int, types: dict[str, str]) -> None:
    """Raises ModelLoadError naming `node` (reported as `name`) when an input's element type is
    not allowed by the op's schema or two inputs of one type parameter differ."""
    try:
        schema = defs.get_schema(node.op_type, opset, node.domain)
    except defs.SchemaError:
        return  # unknown ops are reported by the loader's op check
    constraints = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    formals = list(schema.inputs)
    bound: dict[str, _Binding] = {}
    for index, input_name in enumerate(node.input):
        if not input_name or not formals or input_name not in types:
            continue
        formal = formals[min(index, len(formals) - 1)]
        if index >= len(formals) and formal.option != defs.OpSchema.FormalParameterOption.Variadic:
            continue  # too many inputs: the checker reports it
        actual = types[input_name]
        param = formal.type_str
        allowed = constraints.get(param, {param})
        where = f"node '{name}' (op {node.op_type}): input {index} ('{input_name}', {formal.name})"
        if actual not in allowed:
            raise ModelLoadError(
                f"{where} has type {actual}, which ONNX {node.op_type}-{schema.since_version} does not allow "
                f"(type {param}: {', '.join(sorted(allowed))})"
            )
        if param not in constraints:
            continue
        first = bound.setdefault(param, _Binding(index, input_name, actual))
        if first.type != actual:
            raise ModelLoadError(
                f"{where} has type {actual} but input {first.index} ('{first.name}') has type {first.type}; "
                f"ONNX {node.op_type} requires one type for all its {param} inputs (mixed types need a Cast)"
            )


def check_type_rules(model: onnx.ModelProto, opset: int, node_names: list[str]) -> None:
    """check_node_types for every node of the model, as far as its value types are known (all
    of them once shapes are inferred); `node_names[i]` is the name node i is reported under."""
    types = element_types(model)
    for node, name in zip(model.graph.node, node_names, strict=True):
        check_node_types(node, name, opset, types)
