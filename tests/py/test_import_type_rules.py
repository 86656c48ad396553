"""The importer refuses what ONNX's type rules forbid, with one line naming the node and op:
mixed types on one type parameter (an fp16 weight on an fp32 Conv), an element type the op's
schema does not allow, a reflect pad not smaller than its axis, a model without outputs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from woodpecker.errors import ModelLoadError, ShapeError, WoodpeckerError
from woodpecker.importer import import_onnx

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])


def _model(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
    output_type: int = TensorProto.FLOAT,
    outputs: bool = True,
) -> onnx.ModelProto:
    out = [helper.make_tensor_value_info("y", output_type, None)] if outputs else []
    for value in out:
        value.type.tensor_type.shape.SetInParent()  # shape inference fills it in
    graph = helper.make_graph(nodes, "g", [X], out, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _array(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array, name)


CASES = {
    "fp16-weight-on-fp32-conv": (
        _model(
            [helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")],
            [_array("w", np.ones((1, 1, 1, 1), np.float16))],
        ),
        ModelLoadError,
        "node 'conv1' (op Conv): input 1 ('w', W) has type tensor(float16) but input 0 ('x') has type tensor(float); "
        "ONNX Conv requires one type for all its T inputs (mixed types need a Cast)",
    ),
    "int64-weight-on-fp32-matmul": (
        _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [_array("w", np.ones((4, 4), np.int64))]),
        ModelLoadError,
        "node 'mm' (op MatMul): input 1 ('w', B) has type tensor(int64) but input 0 ('x') has type tensor(float)",
    ),
    "bool-into-relu": (
        _model(
            [
                helper.make_node("Relu", ["c"], ["r"], name="relu_bool"),
                helper.make_node("Add", ["x", "r"], ["y"], name="add"),
            ],
            [_array("c", np.ones((4,), bool))],
        ),
        ModelLoadError,
        "node 'relu_bool' (op Relu): input 0 ('c', X) has type tensor(bool), which ONNX Relu-14 does not allow",
    ),
    "int32-into-sigmoid": (
        _model(
            [helper.make_node("Sigmoid", ["c"], ["y"], name="sig")],
            [_array("c", np.ones((4,), np.int32))],
            TensorProto.INT32,
        ),
        ModelLoadError,
        "node 'sig' (op Sigmoid): input 0 ('c', X) has type tensor(int32), which ONNX Sigmoid-13 does not allow",
    ),
    "reflect-pad-as-large-as-axis": (
        _model(
            [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad1", mode="reflect")],
            [_array("pads", np.array([0, 0, 4, 0, 0, 0, 0, 0], np.int64))],
        ),
        ShapeError,
        "node 'pad1' (op Pad): mode 'reflect' pads axis 2 (size 4) by 4 on a side; reflect pads must be smaller than "
        "the axis size (pads [0, 0, 4, 0, 0, 0, 0, 0])",
    ),
    "no-outputs": (
        _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [], outputs=False),
        ModelLoadError,
        "the model's graph 'g' has no outputs; there is nothing to compute",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_with_one_line(case: str) -> None:
    model, error, message = CASES[case]
    with pytest.raises(error) as info:
        import_onnx(model)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_onnxruntime_refuses_them_too() -> None:
    """The rules are ONNX's, not Woodpecker's: onnxruntime rejects the same models (the
    no-output model aside, which it loads but cannot run usefully)."""
    for case in ("fp16-weight-on-fp32-conv", "bool-into-relu", "reflect-pad-as-large-as-axis"):
        model = CASES[case][0]
        with pytest.raises(Exception):  # noqa: B017 (ort's own exception types)
            session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            session.run(None, {"x": np.ones((1, 1, 4, 4), np.float32)})


def test_allowed_types_and_pads_still_import() -> None:
    """Same ops with allowed types (and a reflect pad smaller than its axis) import, and the
    reflect pad computes what onnxruntime computes (float64 reference, 1e-6)."""
    conv = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv1")], [_array("w", np.ones((1, 1, 1, 1), np.float32))]
    )
    import_onnx(conv)
    pad = _model(
        [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad1", mode="reflect")],
        [_array("pads", np.array([0, 0, 3, 1, 0, 0, 1, 3], np.int64))],
    )
    import woodpecker

    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    got = woodpecker.compile(pad, opt_level=0).run(None, {"x": x})[0]
    want = ort.InferenceSession(pad.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.asarray(got, np.float64), want.astype(np.float64), rtol=0, atol=1e-6)


def test_errors_are_woodpecker_errors() -> None:
    for model, error, _ in CASES.values():
        assert issubclass(error, WoodpeckerError)
        with pytest.raises(WoodpeckerError):
            import_onnx(model)
