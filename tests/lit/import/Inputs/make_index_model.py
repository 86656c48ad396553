"""Writes the ONNX model of index.test: make_index_model.py OUT.onnx (opset 20).

Attention scores by Einsum (Q K^T, then P V), ArgMax of the scores, integer arithmetic on an
int64 graph input (Sub of a constant, Div, Mod), CumSum of the ids and Trilu of the scores.
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

consts = [
    numpy_helper.from_array(np.asarray(1, dtype=np.int64), "one"),
    numpy_helper.from_array(np.asarray(3, dtype=np.int64), "three"),
    numpy_helper.from_array(np.asarray(-1, dtype=np.int64), "last"),
]
nodes = [
    helper.make_node("Einsum", ["q", "k"], ["s"], name="scores", equation="bhid,bhjd->bhij"),
    helper.make_node("Einsum", ["s", "k"], ["o"], name="context", equation="bhij,bhjd->bhid"),
    helper.make_node("ArgMax", ["s"], ["best"], name="argmax", axis=-1, keepdims=0),
    helper.make_node("Sub", ["ids", "one"], ["shifted"], name="sub"),
    helper.make_node("Div", ["shifted", "three"], ["quot"], name="div"),
    helper.make_node("Mod", ["quot", "ids"], ["rem"], name="mod", fmod=1),
    helper.make_node("CumSum", ["rem", "last"], ["sums"], name="cumsum", exclusive=1),
    helper.make_node("Trilu", ["s"], ["causal"], name="trilu", upper=0),
]
graph = helper.make_graph(
    nodes,
    "index",
    [
        helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 2, 4, 8]),
        helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, 2, 4, 8]),
        helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4]),
    ],
    [
        helper.make_tensor_value_info("o", TensorProto.FLOAT, [1, 2, 4, 8]),
        helper.make_tensor_value_info("best", TensorProto.INT64, [1, 2, 4]),
        helper.make_tensor_value_info("sums", TensorProto.INT64, [1, 4]),
        helper.make_tensor_value_info("causal", TensorProto.FLOAT, [1, 2, 4, 4]),
    ],
    initializer=consts,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
model.ir_version = 9
onnx.save(model, sys.argv[1])
