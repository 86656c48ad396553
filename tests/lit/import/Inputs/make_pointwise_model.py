"""Writes the ONNX model of pointwise.test: make_pointwise_model.py OUT.onnx (opset 20)."""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

two = numpy_helper.from_array(np.asarray(2.0, dtype=np.float32), "two")
nodes = [
    helper.make_node("Gelu", ["x"], ["g"], name="gelu", approximate="tanh"),
    helper.make_node("Pow", ["g", "two"], ["p"], name="square"),
    helper.make_node("Clip", ["p", "lo"], ["c"], name="clip"),
    helper.make_node("Mean", ["c", "x", "x"], ["y"], name="mean"),
]
graph = helper.make_graph(
    nodes,
    "pointwise",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8]), helper.make_tensor_value_info("lo", TensorProto.FLOAT, [])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
    initializer=[two],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
model.ir_version = 9
onnx.save(model, sys.argv[1])
