"""Writes a small ONNX model for the import lit tests: make_model.py KIND OUT.onnx."""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_relu_pool():
    w = numpy_helper.from_array(np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3) / 100, "conv.weight")
    b = numpy_helper.from_array(np.linspace(-1, 1, 4, dtype=np.float32), "conv.bias")
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv1",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu1"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["y"], name="flatten", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "conv_relu_pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        initializer=[w, b],
    )
    return graph


def gemm_softmax():
    w = numpy_helper.from_array(np.ones((10, 4), dtype=np.float32), "fc.weight")
    b = numpy_helper.from_array(np.zeros(10, dtype=np.float32), "fc.bias")
    nodes = [
        helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["z"], name="fc", transB=1),
        helper.make_node("Softmax", ["z"], ["y"], name="softmax", axis=-1),
    ]
    return helper.make_graph(
        nodes, "gemm_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])],
        initializer=[w, b],
    )


def conv_hard_activations():
    """Conv -> HardSigmoid (alpha, beta given) -> HardSwish, and a HardSigmoid with the defaults."""
    w = numpy_helper.from_array(np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3) / 100, "conv.weight")
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("HardSigmoid", ["c"], ["s"], name="hsig", alpha=0.25, beta=0.375),
        helper.make_node("HardSwish", ["s"], ["y"], name="hswish"),
        helper.make_node("HardSigmoid", ["x"], ["z"], name="hsig_default"),
    ]
    return helper.make_graph(
        nodes, "conv_hard_activations",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, 8, 8])],
        initializer=[w],
    )


def unsupported():
    nodes = [helper.make_node("LpNormalization", ["x"], ["y"], name="odd_node")]
    return helper.make_graph(
        nodes, "unsupported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
    )


def fp16_conv_weight():
    """An fp16 weight on an fp32 Conv: ONNX's type constraint T wants one type."""
    w = numpy_helper.from_array(np.ones((1, 1, 1, 1), dtype=np.float16), "w16")
    return helper.make_graph(
        [helper.make_node("Conv", ["x", "w16"], ["y"], name="conv_fp16")], "fp16_conv_weight",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])],
        initializer=[w],
    )


KINDS = {
    "fp16_conv_weight": fp16_conv_weight,
    "conv_relu_pool": conv_relu_pool,
    "gemm_softmax": gemm_softmax,
    "conv_hard_activations": conv_hard_activations,
    "unsupported": unsupported,
}

if __name__ == "__main__":
    kind, out = sys.argv[1], sys.argv[2]
    model = helper.make_model(KINDS[kind](), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, out)
