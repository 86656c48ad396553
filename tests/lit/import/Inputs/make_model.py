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


def data_movement():
    """A shape subgraph folded at import, and data-movement ops on the run-time tensor."""
    ints = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape", start=0, end=2),
        helper.make_node("Concat", ["shape", "minus1"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"], name="flat"),
        helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["rev"], name="rev"),
        helper.make_node("Split", ["rev", "split"], ["lo", "hi"], name="split", axis=1),
        helper.make_node("Resize", ["lo", "", "scales"], ["up"], name="up", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Tile", ["hi", "repeats"], ["tiled"], name="tile"),
        helper.make_node("Expand", ["hi", "expand_shape"], ["wide"], name="wide"),
        helper.make_node("GatherElements", ["x", "indices"], ["picked"], name="pick", axis=3),
        helper.make_node("DepthToSpace", ["x"], ["d2s"], name="d2s", blocksize=2, mode="CRD"),
    ]
    return helper.make_graph(
        nodes, "data_movement",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in [
            ("flat", [1, 4, 64]), ("up", [1, 1, 16, 16]), ("tiled", [1, 6, 8, 8]), ("wide", [2, 3, 8, 8]),
            ("picked", [1, 4, 8, 1]), ("d2s", [1, 1, 16, 16])]],
        initializer=[ints("minus1", [-1]), ints("starts", [-1]), ints("ends", [-100]), ints("axes", [1]),
                     ints("steps", [-1]), ints("split", [1, 3]),
                     numpy_helper.from_array(np.asarray([1, 1, 2, 2], dtype=np.float32), "scales"),
                     ints("repeats", [1, 2, 1, 1]), ints("expand_shape", [2, 1, 1, 1]),
                     ints("indices", np.zeros((1, 4, 8, 1)))],
    )


def embedding_mask():
    """int64 input_ids -> Gather from an f32 table; int64 mask -> Unsqueeze, Cast, Greater, Where."""
    table = numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(10, 4), "table")
    axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"], name="gather"),
        helper.make_node("Unsqueeze", ["mask", "axes"], ["mask3"], name="unsqueeze"),
        helper.make_node("Cast", ["mask3"], ["maskf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Greater", ["maskf", "half"], ["keep"], name="greater"),
        helper.make_node("Where", ["keep", "emb", "half"], ["y"], name="where"),
    ]
    return helper.make_graph(
        nodes, "embedding_mask",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 3]),
         helper.make_tensor_value_info("mask", TensorProto.INT64, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4]),
         helper.make_tensor_value_info("keep", TensorProto.BOOL, [1, 3, 1])],
        initializer=[table, axes, half],
    )


KINDS = {
    "data_movement": data_movement,
    "embedding_mask": embedding_mask,
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
