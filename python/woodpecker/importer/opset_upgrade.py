"""What ONNX Runtime accepts before the strict checks: models of opsets older than the importer
reads, and graph outputs whose type or shape the model does not declare.

* An opset older than `MIN_OPSET` is converted with `onnx.version_converter` to `MIN_OPSET`,
  then the constant subgraphs the adapters add (shapes of static tensors, attributes turned
  into `Constant` inputs and arithmetic on them) are folded into initializers, so that the
  importer sees only the ops it would see in a model exported at that opset.
* A graph output without a type (or a tensor type without a shape) gets the one ONNX shape
  inference gives it, as ONNX Runtime does.

Errors are one-line `ModelLoadError`s.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from woodpecker.errors import ModelLoadError

# A folded value larger than this stays a node (shape subgraphs are small; weights are not
# recomputed here).
MAX_FOLDED_ELEMENTS = 1 << 16
DEFAULT_DOMAINS = ("", "ai.onnx")


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def complete_output_types(model: onnx.ModelProto) -> None:
    """Gives every graph output that lacks a type or a shape the inferred one (in place)."""
    incomplete = [o for o in model.graph.output if not _has_tensor_shape(o)]
    if not incomplete:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as error:
        names = ", ".join(f"'{o.name}'" for o in incomplete)
        raise ModelLoadError(
            f"graph output {names} declares no type and ONNX shape inference failed: {first_line(error)}"
        ) from None
    found = {o.name: o for o in inferred.graph.output}
    found.update({v.name: v for v in inferred.graph.value_info})
    for output in incomplete:
        value = found.get(output.name)
        if value is None or not _has_tensor_shape(value):
            missing = "shape" if output.type.tensor_type.elem_type else "type"
            raise ModelLoadError(
                f"graph output '{output.name}' declares no {missing} and ONNX shape inference cannot infer it"
            )
        output.type.CopyFrom(value.type)


def _has_tensor_shape(value: onnx.ValueInfoProto) -> bool:
    return (
        value.HasField("type")
        and value.type.HasField("tensor_type")
        and value.type.tensor_type.elem_type != 0
        and value.type.tensor_type.HasField("shape")
    )


def upgrade_opset(model: onnx.ModelProto, opset: int, target: int) -> onnx.ModelProto:
    """`model` (default-domain opset `opset` < `target`) converted to `target`, with the
    constant subgraphs the conversion leaves folded."""
    try:
        converted = onnx.version_converter.convert_version(model, target)
    except Exception as error:
        raise ModelLoadError(
            f"the model uses ONNX opset {opset}; converting it to opset {target} failed: {first_line(error)}"
        ) from None
    return fold_constant_subgraphs(converted)


def fold_constant_subgraphs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replaces, in graph order, every default-domain node whose inputs are all constant
    (initializers, `Constant` outputs, or `Shape`/`Size` of a tensor whose inferred shape is
    static) by initializers holding its outputs, evaluated with onnx.reference."""
    from onnx.reference import ReferenceEvaluator

    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as error:
        raise ModelLoadError(f"ONNX shape inference failed after the opset conversion: {first_line(error)}") from None
    graph = model.graph
    shapes = _static_shapes(model)
    constants: dict[str, np.ndarray] = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    produced_by_graph_input = {v.name for v in graph.input} - set(constants)
    outputs = {o.name for o in graph.output}
    opset = next(e.version for e in model.opset_import if e.domain in DEFAULT_DOMAINS)
    kept: list[onnx.NodeProto] = []
    folded: dict[str, np.ndarray] = {}
    for node in graph.node:
        values = _fold(node, constants, shapes, produced_by_graph_input, opset, ReferenceEvaluator)
        if values is None or any(name in outputs for name in node.output):
            kept.append(node)
            continue
        constants.update(values)
        folded.update(values)
    if not folded:
        return model
    used = {name for node in kept for name in node.input} | outputs
    del graph.node[:]
    graph.node.extend(kept)
    for name, value in folded.items():
        if name in used:
            graph.initializer.append(numpy_helper.from_array(value, name))
    del graph.value_info[:]
    return model


def _fold(
    node: onnx.NodeProto,
    constants: dict[str, np.ndarray],
    shapes: dict[str, tuple[int, ...]],
    graph_inputs: set[str],
    opset: int,
    evaluator: type,
) -> dict[str, np.ndarray] | None:
    if node.domain not in DEFAULT_DOMAINS or any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
        return None
    inputs = [name for name in node.input if name]
    if node.op_type in ("Shape", "Size") and inputs and inputs[0] in shapes:
        return {node.output[0]: _shape_of(node, shapes[inputs[0]])}
    if node.op_type in ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"):
        return None
    if not all(name in constants and name not in graph_inputs for name in inputs):
        return None
    return _evaluate(node, {name: constants[name] for name in inputs}, opset, evaluator)


def _shape_of(node: onnx.NodeProto, dims: tuple[int, ...]) -> np.ndarray:
    """`Shape` (with its opset-15 start/end) or `Size` of a tensor of static shape `dims`."""
    if node.op_type == "Size":
        return np.array(int(np.prod(dims, dtype=np.int64)), np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return np.array(dims[slice(start, end)], np.int64)


def _evaluate(
    node: onnx.NodeProto, feeds: dict[str, np.ndarray], opset: int, evaluator: type
) -> dict[str, np.ndarray] | None:
    try:
        session = evaluator(_single_node_model(node, feeds, opset))
        results = session.run(None, feeds)
    except Exception:  # not evaluable here (an op onnx.reference lacks): leave it to the importer
        return None
    values = {name: np.asarray(value) for name, value in zip(node.output, results, strict=False) if name}
    if any(v.size > MAX_FOLDED_ELEMENTS for v in values.values()):
        return None
    return values


def _single_node_model(node: onnx.NodeProto, feeds: dict[str, np.ndarray], opset: int) -> onnx.ModelProto:
    from onnx import helper

    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
              for name, v in feeds.items()]
    outputs = [onnx.ValueInfoProto(name=name) for name in node.output if name]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        tensor = value.type.tensor_type
        if not tensor.HasField("shape") or not tensor.elem_type:
            continue
        dims = tensor.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    return shapes
