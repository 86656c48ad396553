"""What ONNX Runtime accepts, Woodpecker compiles: graph outputs without a declared type or
shape get the inferred one, and opsets older than 11 are converted (onnx.version_converter)
with the constant shape subgraphs folded. Numerics against ONNX Runtime (rtol 1e-4)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.errors import ModelLoadError
from woodpecker.importer.loader import load_model

OPTIONS = woodpecker.CompileOptions(libraries="none")


def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _x(shape=(2, 3)) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)


def _compare(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = woodpecker.compile(model, options=OPTIONS).run(None, feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "output",
    [onnx.ValueInfoProto(name="y"), helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    ids=["no-type", "no-shape"],
)
def test_an_output_without_declared_type_or_shape_is_inferred(output: onnx.ValueInfoProto) -> None:
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) / 10, "w")
    model = _model([helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
                   [_x()], [output], [w])
    loaded = load_model(model)
    (out,) = loaded.model.graph.output
    assert out.type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [2, 4]
    _compare(model, {"x": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)})


def test_an_output_nothing_infers_is_one_clear_error() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_x()], [onnx.ValueInfoProto(name="z")])
    with pytest.raises(ModelLoadError, match="graph output 'z' declares no type") as info:
        load_model(model)
    assert "\n" not in str(info.value)


def _conv_bn_model(opset: int) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 4).astype(np.float32), "scale"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "bias"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32) * 0.1, "mean"),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 4).astype(np.float32), "var"),
        numpy_helper.from_array(rng.standard_normal((4 * 6 * 6, 5)).astype(np.float32), "fc"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "fc_bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["b"]),
        helper.make_node("Relu", ["b"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fc_bias"], ["y"]),  # C is required before opset 11
    ]
    return _model(nodes, [_x((1, 3, 8, 8))], [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 5))],
                  inits, opset)


@pytest.mark.parametrize("opset", [7, 9, 10])
def test_an_old_opset_is_converted(opset: int) -> None:
    model = _conv_bn_model(opset)
    assert load_model(model).opset == 11
    _compare(model, {"x": np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)})


def test_the_converted_models_shape_subgraphs_are_folded() -> None:
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape (opset 9): after the conversion the
    shape chain is initializers, and only the Reshape and the Relu are left."""
    n = lambda op, i, o, **kw: helper.make_node(op, i, o, **kw)  # noqa: E731
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    nodes = [
        n("Shape", ["x"], ["s"]),
        n("Gather", ["s", "zero"], ["batch"], axis=0),
        n("Unsqueeze", ["batch"], ["batch1"], axes=[0]),
        n("Concat", ["batch1", "minus_one"], ["target"], axis=0),
        n("Reshape", ["x", "target"], ["flat"]),
        n("Relu", ["flat"], ["y"]),
    ]
    model = _model(nodes, [_x((2, 3, 4))], [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 12))],
                   inits, opset=9)
    loaded = load_model(model)
    assert [node.op_type for node in loaded.model.graph.node] == ["Reshape", "Relu"]
    _compare(model, {"x": np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)})


def test_an_old_opset_with_input_shapes_folds_the_overridden_shape() -> None:
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    model = _model(nodes, [_x(("n", 3))], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ("n", 3))], opset=9)
    loaded = load_model(model, input_shapes={"x": (5, 3)})
    assert [node.op_type for node in loaded.model.graph.node] == ["Reshape", "Relu"]
    (s,) = (init for init in loaded.model.graph.initializer if init.name == "s")
    assert numpy_helper.to_array(s).tolist() == [5, 3]


def test_a_newer_opset_than_supported_is_one_clear_error() -> None:
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_x()],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 3))], opset=29)
    with pytest.raises(ModelLoadError, match="opset 29; Woodpecker supports opsets up to 28"):
        load_model(model)
