"""Reading, validating and shape-inferring an ONNX model before conversion.

Every failure becomes a `WoodpeckerError` with a one-line message (no protobuf
or checker traceback chained to it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from woodpecker.errors import ModelLoadError, ShapeError, UnsupportedOperatorError
from woodpecker.importer.converters import SUPPORTED_OPS
from woodpecker.importer.type_rules import check_type_rules
from woodpecker.runtime.bundle import member, read_range, read_regular_file
from woodpecker.runtime.feeds import InputSpec, checked_shape

MIN_OPSET = 11
MAX_OPSET = 28  # the newest opset of the onnx release installed (1.23)
DEFAULT_DOMAINS = ("", "ai.onnx")
MAX_MODEL_BYTES = (2 << 30) - 1  # protobuf's limit on one message: larger models keep weights in external data


@dataclass(frozen=True)
class LoadedModel:
    """A checked model whose graph inputs are static and whose value shapes are inferred."""

    model: onnx.ModelProto
    opset: int


def load_model(
    model: str | os.PathLike | onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> LoadedModel:
    """Parses, checks, applies `input_shapes`, requires static inputs and infers shapes."""
    proto = read_model(model)
    opset = default_opset(proto)
    check_nodes(proto)
    check_model(proto)
    if input_shapes:
        apply_input_shapes(proto, input_shapes)
    check_graph_inputs(proto)
    check_has_outputs(proto)
    forget_recorded_shapes(proto)
    names = [node_name(node, i) for i, node in enumerate(proto.graph.node)]
    # The types of inputs and initializers first (a type error there is what shape inference
    # would fail on, less clearly), then those of every inferred value.
    check_type_rules(proto, opset, names)
    inferred = infer_shapes(proto)
    check_type_rules(inferred, opset, names)
    return LoadedModel(inferred, opset)


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def read_model(model: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    """A private copy of `model` (a path or a ModelProto), external data loaded.

    A path must name a regular file of at most MAX_MODEL_BYTES (the 2 GiB protobuf limit); a
    FIFO, a device or a directory is refused before anything is read. External data files
    must be regular files inside the model's directory (`runtime.bundle.member`)."""
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        return proto
    if not isinstance(model, str | os.PathLike):
        raise ModelLoadError(f"expected a path or an onnx.ModelProto, got {type(model).__name__}")
    path = os.fspath(model)
    data = read_regular_file(path, ModelLoadError, max_bytes=MAX_MODEL_BYTES, what="ONNX model")
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as error:  # protobuf DecodeError and friends
        raise ModelLoadError(
            f"'{path}' is not a valid ONNX model (protobuf parse failed: {first_line(error)})"
        ) from None
    load_external_data(proto, os.path.dirname(os.path.abspath(path)), path)
    return proto


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of `graph` and its subgraphs: initializers and tensor attributes."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _graph_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graph_tensors(subgraph)


def load_external_data(model: onnx.ModelProto, directory: str, path: str) -> None:
    """Reads the external data of `model`'s tensors into them: each file a regular file inside
    `directory`, each tensor's bytes inside its file and no more than the tensor's size."""
    for tensor in _graph_tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        where = f"'{path}': external data of tensor '{tensor.name}'"
        try:
            info = ExternalDataInfo(tensor)
        except ValueError as error:
            raise ModelLoadError(f"{where}: {first_line(error)}") from None
        try:
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except Exception:
            raise ModelLoadError(f"{where} has data type {tensor.data_type}, which is not stored externally") from None
        nbytes = math.prod(tensor.dims) * itemsize
        if info.length is not None and info.length != nbytes:
            raise ModelLoadError(f"{where} is {info.length} bytes long, its shape {list(tensor.dims)} needs {nbytes}")
        file = member(directory, info.location, ModelLoadError, max_bytes=None)
        offset = info.offset or 0
        tensor.raw_data = read_range(file, ModelLoadError, offset=offset, length=nbytes, max_bytes=nbytes)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def default_opset(model: onnx.ModelProto) -> int:
    """The opset version of the default ONNX domain; must lie in [MIN_OPSET, MAX_OPSET]."""
    versions = [entry.version for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS]
    if not versions:
        raise ModelLoadError("the model imports no opset of the default ONNX domain (ai.onnx)")
    opset = int(versions[0])
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelLoadError(
            f"the model uses ONNX opset {opset}; Woodpecker supports opsets {MIN_OPSET} to {MAX_OPSET} "
            f"(convert it with onnx.version_converter.convert_version(model, 17))"
        )
    return opset


def node_name(node: onnx.NodeProto, index: int) -> str:
    """The name a node is reported under (and its MLIR location)."""
    return node.name or f"{node.op_type}_{index}"


def check_nodes(model: onnx.ModelProto) -> None:
    """Rejects foreign domains and op types without a converter (before the checker does)."""
    for index, node in enumerate(model.graph.node):
        if node.domain not in DEFAULT_DOMAINS:
            raise UnsupportedOperatorError(
                node.op_type,
                node_name(node, index),
                f"operator domain '{node.domain}' is not supported (only the default ONNX domain is)",
                supported=list(SUPPORTED_OPS),
            )
        if node.op_type not in SUPPORTED_OPS:
            raise UnsupportedOperatorError(
                node.op_type,
                node_name(node, index),
                "operator type is not supported",
                supported=list(SUPPORTED_OPS),
            )


def check_has_outputs(model: onnx.ModelProto) -> None:
    """A model must compute something: a graph without outputs is refused."""
    if not model.graph.output:
        raise ModelLoadError(f"the model's graph '{model.graph.name}' has no outputs; there is nothing to compute")


def check_model(model: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        raise ModelLoadError(f"invalid ONNX model: {first_line(error)}") from None


def _initializer_names(model: onnx.ModelProto) -> set[str]:
    return {init.name for init in model.graph.initializer}


def runtime_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are fed at run time (not initializers)."""
    constants = _initializer_names(model)
    return [value for value in model.graph.input if value.name not in constants]


def apply_input_shapes(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]]) -> None:
    """Overwrites the declared shapes of graph inputs; drops stale intermediate shapes."""
    inputs = {value.name: value for value in runtime_inputs(model)}
    if not isinstance(input_shapes, Mapping):
        raise ShapeError(
            f"input_shapes must be a dict of input name -> shape, not {type(input_shapes).__name__}; "
            f"inputs are {sorted(inputs)}"
        )
    for name, shape in input_shapes.items():
        if name not in inputs:
            raise ShapeError(f"input_shapes names '{name}', which is not a graph input; inputs are {sorted(inputs)}")
        dims = list(checked_shape(name, shape, ShapeError))
        tensor_type = inputs[name].type.tensor_type
        if tensor_type.HasField("shape") and len(tensor_type.shape.dim) != len(dims):
            raise ShapeError(
                f"input_shapes['{name}'] = {dims} has rank {len(dims)} but the model declares "
                f"rank {len(tensor_type.shape.dim)} for '{name}'"
            )
        tensor_type.shape.ClearField("dim")
        for dim in dims:
            tensor_type.shape.dim.add().dim_value = dim


def declared_inputs(model: onnx.ModelProto) -> list[InputSpec]:
    """The runtime inputs as the model declares them: element type and shape, an open
    dimension given by its name (or "?"); a non-tensor input or one of unknown rank is a
    ShapeError naming it."""
    specs = []
    for value in runtime_inputs(model):
        tensor_type = value.type.tensor_type
        if not value.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
            raise ShapeError(f"graph input '{value.name}' is not a tensor of known rank")
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
        except (KeyError, TypeError, ValueError):
            raise ShapeError(f"graph input '{value.name}' has an unknown element type") from None
        shape = tuple(
            int(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor_type.shape.dim
        )
        specs.append(InputSpec(value.name, dtype, shape))
    return specs


def forget_recorded_shapes(model: onnx.ModelProto) -> None:
    """Drops the shapes an exporter recorded for intermediate values and outputs.

    They are inferred afresh from the (possibly overridden) input shapes; stale or
    exporter-specific ones would only make strict shape inference fail.
    """
    del model.graph.value_info[:]
    for output in model.graph.output:
        if output.type.tensor_type.HasField("shape"):
            output.type.tensor_type.ClearField("shape")


def _shape_text(dims: Sequence[onnx.TensorShapeProto.Dimension]) -> str:
    parts = []
    for dim in dims:
        if dim.HasField("dim_value"):
            parts.append(str(dim.dim_value))
        else:
            parts.append(dim.dim_param or "?")
    return "[" + ", ".join(parts) + "]"


def _fix_hint(name: str, example: Sequence[int]) -> str:
    cli = "x".join(str(d) for d in example)
    api = "(" + ", ".join(str(d) for d in example) + ("," if len(example) == 1 else "") + ")"
    return (
        f"give it a static shape with `--input-shape {name}={cli}` on the CLI "
        f"or input_shapes={{'{name}': {api}}} in the API"
    )


def check_graph_inputs(model: onnx.ModelProto) -> None:
    """Every runtime input must be a float32 tensor of static, positive shape."""
    for value in runtime_inputs(model):
        name = value.name
        if not value.type.HasField("tensor_type"):
            raise ShapeError(f"graph input '{name}' is not a tensor; only float32 tensors are supported")
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise ShapeError(
                f"graph input '{name}' has element type "
                f"{onnx.TensorProto.DataType.Name(tensor_type.elem_type)}; "
                "Woodpecker compiles float32 (FLOAT) inputs only"
            )
        if not tensor_type.HasField("shape"):
            raise ShapeError(f"graph input '{name}' has no shape (unknown rank); " + _fix_hint(name, (1, 3, 224, 224)))
        dims = tensor_type.shape.dim
        if any(d.HasField("dim_value") and d.dim_value <= 0 for d in dims):
            raise ShapeError(
                f"graph input '{name}' has shape {_shape_text(dims)} with an empty (zero-sized) "
                "dimension; Woodpecker does not compile empty tensors"
            )
        static = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if None in static:
            example = [d if d is not None else 1 for d in static]
            bad = static.index(None)
            raise ShapeError(
                f"graph input '{name}' has shape {_shape_text(dims)} with a dynamic dimension "
                f"(dimension {bad}); " + _fix_hint(name, example)
            )


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as error:
        raise ShapeError(f"ONNX shape inference failed: {first_line(error)}") from None


def check_graph_outputs(model: onnx.ModelProto) -> None:
    """Every graph output must be float32 (checked after conversion, which explains more)."""
    for value in model.graph.output:
        tensor_type = value.type.tensor_type
        if not value.type.HasField("tensor_type") or tensor_type.elem_type != onnx.TensorProto.FLOAT:
            kind = (
                onnx.TensorProto.DataType.Name(tensor_type.elem_type)
                if value.type.HasField("tensor_type")
                else "a non-tensor type"
            )
            raise ShapeError(
                f"graph output '{value.name}' has element type {kind}; Woodpecker compiles float32 (FLOAT) outputs only"
            )
