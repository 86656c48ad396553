"""Writes the ONNX model of the normalization/reduction import lit test: make_norm_model.py OUT.onnx.

LayerNormalization (scale, bias, epsilon) -> ReduceSum (opset-18 axes input, keepdims=0),
and LogSoftmax and GroupNormalization side by side (opset 21).
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

inits = [
    numpy_helper.from_array(np.ones(8, dtype=np.float32), "ln.scale"),
    numpy_helper.from_array(np.zeros(8, dtype=np.float32), "ln.bias"),
    numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes"),
    numpy_helper.from_array(np.ones(4, dtype=np.float32), "gn.scale"),
    numpy_helper.from_array(np.zeros(4, dtype=np.float32), "gn.bias"),
]
nodes = [
    helper.make_node("LayerNormalization", ["x", "ln.scale", "ln.bias"], ["n"], name="ln", axis=-1, epsilon=1e-6),
    helper.make_node("ReduceSum", ["n", "axes"], ["s"], name="sum", keepdims=0),
    helper.make_node("LogSoftmax", ["x"], ["l"], name="logsoftmax", axis=1),
    helper.make_node("GroupNormalization", ["img", "gn.scale", "gn.bias"], ["g"], name="gn", num_groups=2),
]
graph = helper.make_graph(
    nodes, "norm",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8]),
     helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 4, 2, 2])],
    [helper.make_tensor_value_info("s", TensorProto.FLOAT, [2, 3]),
     helper.make_tensor_value_info("l", TensorProto.FLOAT, [2, 3, 8]),
     helper.make_tensor_value_info("g", TensorProto.FLOAT, [1, 4, 2, 2])],
    initializer=inits,
)
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), sys.argv[1])
