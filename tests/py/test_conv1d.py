"""1-D Conv, MaxPool and AveragePool (imported as the 2-D ops with H = 1) compiled end to end
against ONNX Runtime, rtol 1e-4, atol 1e-5, at O0 and O2 (where a following Relu still fuses)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker import CompileOptions

ort = pytest.importorskip("onnxruntime")

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "conv": ("Conv", {}),
    "conv_strided_dilated_padded": ("Conv", {"strides": [2], "dilations": [2], "pads": [1, 3]}),
    "conv_groups_same_upper": ("Conv", {"group": 2, "auto_pad": "SAME_UPPER", "strides": [3]}),
    "maxpool": ("MaxPool", {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
    "maxpool_ceil_dilated": ("MaxPool", {"kernel_shape": [2], "strides": [2], "dilations": [2], "ceil_mode": 1}),
    "avgpool_count_pad": ("AveragePool", {"kernel_shape": [3], "pads": [1, 2], "count_include_pad": 1}),
    "avgpool_same_lower": ("AveragePool", {"kernel_shape": [4], "strides": [2], "auto_pad": "SAME_LOWER"}),
}


@pytest.mark.parametrize("opt_level", [0, 2], ids=["O0", "O2"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_1d_op_matches_onnxruntime(name: str, opt_level: int) -> None:
    op_type, attrs = CASES[name]
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal((2, 4, 17)).astype(np.float32)
    initializers = []
    inputs = ["x"]
    if op_type == "Conv":
        w = (rng.standard_normal((6, 4 // attrs.get("group", 1), 3)) * 0.4).astype(np.float32)
        b = rng.standard_normal(6).astype(np.float32)
        initializers = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
        inputs = ["x", "w", "b"]
    nodes = [helper.make_node(op_type, inputs, ["h"], **attrs), helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializers,
    )
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[
        0
    ]
    options = CompileOptions(opt_level=opt_level, libraries="none", use_tuning_records=False)
    (got,) = woodpecker.compile(model, options=options).run(None, {"x": x})
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
