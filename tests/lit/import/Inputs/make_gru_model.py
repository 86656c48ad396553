"""Writes the ONNX model of gru-unrolled.test: make_gru_model.py OUT.onnx (T=2, B=1, I=2, H=3)."""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)
weights = [
    numpy_helper.from_array(rng.standard_normal((1, 9, 2)).astype(np.float32), "W"),
    numpy_helper.from_array(rng.standard_normal((1, 9, 3)).astype(np.float32), "R"),
]
node = helper.make_node("GRU", ["X", "W", "R"], ["", "Y_h"], name="gru", hidden_size=3)
graph = helper.make_graph(
    [node],
    "gru",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 1, 2])],
    [helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, 1, 3])],
    initializer=weights,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
model.ir_version = 8
onnx.save(model, sys.argv[1])
