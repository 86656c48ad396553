"""Walking a loaded ONNX graph and building `func.func @main` in the `wpk` dialect."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import onnx
from mlir import ir
from mlir.dialects import func

from woodpecker.dialect import element_type_of, shape_of, str_attr, tensor_type, value_dtype
from woodpecker.dialect.weights import WeightTable
from woodpecker.errors import CompilationError, ModelLoadError, ShapeError
from woodpecker.importer.converters import CONVERTERS, SUPPORTED_OPS
from woodpecker.importer.loader import (
    LoadedModel,
    check_graph_outputs,
    first_line,
    node_name,
    runtime_inputs,
)
from woodpecker.importer.node import NodeContext, ValueInfo
from woodpecker.importer.values import ValueMap
from woodpecker.runtime.feeds import check_element_count


@dataclass
class ImportedModel:
    """An imported module with the arrays of its `wpk.weight` ops and its I/O signature."""

    module: ir.Module
    context: ir.Context
    weights: WeightTable
    input_names: list[str]
    output_names: list[str]
    input_shapes: dict[str, tuple[int, ...]]
    output_shapes: dict[str, tuple[int, ...]]
    # Numpy dtypes (float32, int64, int32, bool) of the inputs and outputs, by name.
    input_dtypes: dict[str, np.dtype] = field(default_factory=dict)
    output_dtypes: dict[str, np.dtype] = field(default_factory=dict)


def value_infos(model: onnx.ModelProto) -> dict[str, ValueInfo]:
    """Element type and (fully static) shape of every value shape inference typed."""
    graph = model.graph
    infos: dict[str, ValueInfo] = {}
    for value in chain(graph.input, graph.value_info, graph.output):
        if not value.type.HasField("tensor_type"):
            continue
        tensor = value.type.tensor_type
        shape = None
        if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
            shape = tuple(int(d.dim_value) for d in tensor.shape.dim)
        infos[value.name] = ValueInfo(tensor.elem_type, shape)
    return infos


def used_names(graph: onnx.GraphProto) -> set[str]:
    """Values read by some node or returned by the graph."""
    names = {name for node in graph.node for name in node.input if name}
    names.update(output.name for output in graph.output)
    return names


def initializer_arrays(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    arrays = {}
    for init in graph.initializer:
        try:
            arrays[init.name] = onnx.numpy_helper.to_array(init)
        except Exception as error:
            raise ModelLoadError(f"cannot read initializer '{init.name}': {first_line(error)}") from None
    return arrays


def _store_results(values: ValueMap, node: onnx.NodeProto, label: str, results: list) -> None:
    for name, result in zip(node.output, results, strict=False):
        if not name or result is None:
            continue
        if isinstance(result, np.ndarray | np.generic):  # a fold may give a numpy scalar (np.take)
            values.set_constant(name, np.asarray(result))
        else:
            shape = shape_of(result)
            check_element_count(shape, ShapeError, f"node '{label}' (op {node.op_type}): output '{name}' {list(shape)}")
            values.set_value(name, result)


def _string_array(names: list[str]) -> ir.Attribute:
    return ir.ArrayAttr.get([str_attr(n) for n in names])


def build_module(loaded: LoadedModel, context: ir.Context) -> ImportedModel:
    """Converts every node of `loaded` into `wpk` ops inside one `func.func @main`."""
    model = loaded.model
    graph = model.graph
    infos = value_infos(model)
    used = used_names(graph)
    values = ValueMap()
    for name, array in initializer_arrays(graph).items():
        values.set_constant(name, array)
    inputs = runtime_inputs(model)
    input_names = [value.name for value in inputs]
    input_shapes = {value.name: tuple(int(d.dim_value) for d in value.type.tensor_type.shape.dim) for value in inputs}
    output_names = [value.name for value in graph.output]
    input_dtypes = {
        value.name: np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)) for value in inputs
    }

    with context, ir.Location.unknown():
        module = ir.Module.create()
        with ir.InsertionPoint(module.body):
            arg_types = [tensor_type(input_shapes[n], element_type_of(input_dtypes[n])) for n in input_names]
            fn = func.FuncOp("main", (arg_types, []))
        block = fn.add_entry_block()
        for name, arg in zip(input_names, block.arguments, strict=True):
            values.set_value(name, arg)
        with ir.InsertionPoint(block):
            for index, node in enumerate(graph.node):
                ctx = NodeContext(node, node_name(node, index), loaded.opset, values, infos, used, SUPPORTED_OPS)
                _store_results(values, node, ctx.name, list(CONVERTERS[node.op_type](ctx)))
            check_graph_outputs(model)
            results = []
            for name in output_names:
                if not values.has(name):
                    raise ShapeError(f"graph output '{name}' is not produced by any node")
                results.append(_output_value(values, name))
            func.ReturnOp(results)
        fn.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get([a.type for a in block.arguments], [r.type for r in results])
        )
        fn.attributes["wpk.input_names"] = _string_array(input_names)
        fn.attributes["wpk.output_names"] = _string_array(output_names)
        try:
            module.operation.verify()
        except ir.MLIRError as error:
            raise CompilationError(f"the imported module does not verify: {error}") from None
        output_shapes = {name: tuple(shape_of(r)) for name, r in zip(output_names, results, strict=True)}
        output_dtypes = {name: value_dtype(r) for name, r in zip(output_names, results, strict=True)}

    return ImportedModel(
        module=module,
        context=context,
        weights=values.weights,
        input_names=input_names,
        output_names=output_names,
        input_shapes=input_shapes,
        output_shapes=output_shapes,
        input_dtypes=input_dtypes,
        output_dtypes=output_dtypes,
    )


def _output_value(values: ValueMap, name: str) -> ir.Value:
    """The tensor of graph output `name` in its own element type (a constant materialized)."""
    try:
        return values.typed_tensor(name, ir.Location.name(name))
    except TypeError as error:
        raise ShapeError(f"graph output '{name}': {error}") from None
