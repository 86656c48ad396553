"""ConvTranspose (wpk.conv_transpose2d) compiled end to end against ONNX Runtime, rtol 1e-4,
atol 1e-5: groups, strides, pads, output_padding, dilations, output_shape, auto_pad, bias,
constant and run-time filters, 1-D (imported with H = 1), and the numpy semantics."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker import CompileOptions
from woodpecker.errors import UnsupportedOperatorError
from woodpecker.ops.conv_transpose import conv_transpose2d

ort = pytest.importorskip("onnxruntime")

CASES: dict[str, tuple[list[int], list[int], dict[str, Any]]] = {
    # name: (x shape, w shape, attributes)
    "plain": ([1, 3, 5, 5], [3, 4, 3, 3], {}),
    "strided_padded": ([2, 4, 4, 6], [4, 3, 3, 2], {"strides": [2, 3], "pads": [1, 0, 2, 1]}),
    "output_padding": ([1, 2, 4, 4], [2, 2, 3, 3], {"strides": [3, 2], "output_padding": [2, 1]}),
    "dilated_groups": ([1, 6, 5, 4], [6, 2, 3, 2], {"group": 3, "dilations": [2, 1], "strides": [1, 2]}),
    "output_shape": ([1, 1, 3, 3], [1, 2, 3, 3], {"strides": [3, 2], "output_shape": [10, 8]}),
    "same_lower": ([1, 2, 3, 4], [2, 2, 3, 3], {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    "one_d": ([2, 3, 7], [3, 2, 3], {"strides": [2], "pads": [1, 2], "output_padding": [1]}),
}


def _model(name: str, constant_filter: bool, bias: bool) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    x_shape, w_shape, attrs = CASES[name]
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.5).astype(np.float32)
    m = w_shape[1] * attrs.get("group", 1)
    b = rng.standard_normal(m).astype(np.float32)
    inputs = ["x", "w"] + (["b"] if bias else [])
    node = helper.make_node("ConvTranspose", inputs, ["y"], **attrs)
    feeds = {"x": x} | ({} if constant_filter else {"w": w})
    initializers = ([numpy_helper.from_array(w, "w")] if constant_filter else []) + (
        [numpy_helper.from_array(b, "b")] if bias else []
    )
    graph_inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in feeds.items()]
    graph = helper.make_graph(
        [node], name, graph_inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model = onnx.shape_inference.infer_shapes(model)
    return model, feeds


@pytest.mark.parametrize("opt_level", [0, 2], ids=["O0", "O2"])
@pytest.mark.parametrize(("constant_filter", "bias"), [(True, True), (False, False)], ids=["const_bias", "runtime"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_conv_transpose_matches_onnxruntime(name: str, constant_filter: bool, bias: bool, opt_level: int) -> None:
    model, feeds = _model(name, constant_filter, bias)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    options = CompileOptions(opt_level=opt_level, libraries="none", use_tuning_records=False)
    (got,) = woodpecker.compile(model, options=options).run(None, feeds)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_numpy_semantics_is_the_adjoint_of_conv() -> None:
    """<conv_transpose(x, w), y> == <x, conv(y, w)>: the transposed convolution is the adjoint."""
    from woodpecker.ops.conv import conv2d

    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((1, 4, 3, 4)), rng.standard_normal((4, 3, 3, 2))
    strides, pads, dilations = [2, 2], [1, 0, 1, 1], [1, 2]
    t = conv_transpose2d(x, w, None, strides, pads, [0, 0], dilations, 2)
    y = rng.standard_normal(t.shape)
    # The ONNX [C, M/g, kh, kw] filter is also conv's [out = C, in per group = M/g, kh, kw] one.
    back = conv2d(y, w, None, strides, pads, dilations, 2)
    assert back.shape == x.shape
    assert np.isclose(np.sum(t * y), np.sum(x * back), rtol=1e-10)


def test_conv_transpose_3d_is_one_error() -> None:
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up3d")
    w = numpy_helper.from_array(np.ones((1, 1, 2, 2, 2), np.float32), "w")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3, 3])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedOperatorError, match=r"up3d.*only 1-D and 2-D ConvTranspose"):
        woodpecker.compile(model)
