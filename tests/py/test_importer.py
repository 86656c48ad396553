"""ONNX importer: IR structure, opset differences, weights and error messages."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from mlir import ir
from onnx import TensorProto, helper, numpy_helper

from woodpecker.dialect import attr_bool, attr_float, attr_int, attr_ints, attr_str, create_context, shape_of
from woodpecker.dialect.weights import WeightTable
from woodpecker.errors import ModelLoadError, ShapeError, UnsupportedOperatorError
from woodpecker.importer import SUPPORTED_OPS, ImportedModel, import_onnx, import_onnx_with_weights

F32 = TensorProto.FLOAT
RNG = np.random.default_rng(0)

# ----------------------------------------------------------------------------
# Helpers.


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, Sequence[int | str]],
    outputs: dict[str, Sequence[int | str] | int],
    initializers: Sequence[TensorProto] = (),
    opset: int = 13,
    input_type: int = F32,
) -> onnx.ModelProto:
    """A model; an output given as an int is a rank with symbolic dims (shape inference fills it)."""

    def out_info(name: str, shape: Sequence[int | str] | int) -> onnx.ValueInfoProto:
        if isinstance(shape, int):
            shape = [f"{name}_d{i}" for i in range(shape)]
        return helper.make_tensor_value_info(name, F32, list(shape))

    graph = helper.make_graph(
        list(nodes),
        "test",
        [helper.make_tensor_value_info(n, input_type, list(s)) for n, s in inputs.items()],
        [out_info(n, s) for n, s in outputs.items()],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def ops(module: ir.Module) -> list[ir.Operation]:
    """The operations of @main's body (return included)."""
    main = module.body.operations[0]
    return [op.operation for op in main.regions[0].blocks[0].operations]


def wpk_ops(module: ir.Module, name: str | None = None) -> list[ir.Operation]:
    found = [op for op in ops(module) if op.name.startswith("wpk.")]
    return [op for op in found if name is None or op.name == name]


def one_op(module: ir.Module, name: str) -> ir.Operation:
    found = wpk_ops(module, name)
    assert len(found) == 1, f"expected one {name}, got {[op.name for op in wpk_ops(module)]}"
    return found[0]


def kernel_names(module: ir.Module) -> list[str]:
    return [op.name for op in wpk_ops(module) if op.name not in ("wpk.weight", "wpk.constant")]


def result_shape(op: ir.Operation) -> list[int]:
    return shape_of(op.results[0])


# ----------------------------------------------------------------------------
# Structure of the imported IR.


def test_conv_relu_pool_gemm_structure() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1, alpha=0.5),
    ]
    model = make_model(
        nodes,
        {"x": [1, 3, 8, 8]},
        {"y": [1, 10]},
        [
            init("conv.weight", rand(4, 3, 3, 3)),
            init("conv.bias", rand(4)),
            init("fc.w", rand(10, 64)),
            init("fc.b", rand(10)),
        ],
    )
    module = import_onnx(model)
    module.operation.verify()
    text = str(module)
    assert kernel_names(module) == ["wpk.conv2d", "wpk.relu", "wpk.max_pool", "wpk.flatten", "wpk.gemm"]
    assert "func.func @main(%arg0: tensor<1x3x8x8xf32>) -> tensor<1x10xf32>" in text
    assert 'wpk.input_names = ["x"]' in text and 'wpk.output_names = ["y"]' in text
    assert re.search(
        r'"wpk.conv2d"\(%arg0, %\d+, %\d+\) \{dilations = array<i64: 1, 1>, groups = 1 : i64, '
        r"pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 1, 1>\}",
        text,
    )
    assert "tensor<1x4x8x8xf32>" in text
    pool = one_op(module, "wpk.max_pool")
    assert attr_ints(pool, "kernel_shape") == [2, 2] and attr_ints(pool, "strides") == [2, 2]
    assert attr_ints(pool, "pads") == [0, 0, 0, 0] and not attr_bool(pool, "ceil_mode")
    assert result_shape(pool) == [1, 4, 4, 4]
    assert attr_int(one_op(module, "wpk.flatten"), "axis") == 1
    gemm = one_op(module, "wpk.gemm")
    assert len(gemm.operands) == 3
    assert attr_float(gemm, "alpha") == 0.5 and attr_float(gemm, "beta") == 1.0
    assert not attr_bool(gemm, "trans_a") and attr_bool(gemm, "trans_b")
    assert "trans_b = true" in text


def test_locations_use_node_names_or_op_type_and_index() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="first_relu"),
        helper.make_node("Sigmoid", ["a"], ["b"]),
        helper.make_node("Tanh", ["b"], ["y"]),
    ]
    module = import_onnx(make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}))
    asm = module.operation.get_asm(enable_debug_info=True)
    for name in ("first_relu", "Sigmoid_1", "Tanh_2"):
        assert f'loc("{name}")' in asm
    assert kernel_names(module) == ["wpk.relu", "wpk.sigmoid", "wpk.tanh"]


@pytest.mark.parametrize(
    ("auto_pad", "expected_pads", "expected_shape"),
    [
        ("SAME_UPPER", [0, 0, 1, 1], [1, 2, 3, 3]),
        ("SAME_LOWER", [1, 1, 0, 0], [1, 2, 3, 3]),
        ("VALID", [0, 0, 0, 0], [1, 2, 2, 2]),
    ],
)
def test_conv_auto_pad_becomes_explicit_pads(
    auto_pad: str, expected_pads: list[int], expected_shape: list[int]
) -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[2, 2])
    model = make_model([node], {"x": [1, 3, 6, 6]}, {"y": 4}, [init("w", rand(2, 3, 3, 3))])
    module = import_onnx(model)
    conv = one_op(module, "wpk.conv2d")
    assert attr_ints(conv, "pads") == expected_pads
    assert attr_ints(conv, "strides") == [2, 2]
    assert result_shape(conv) == expected_shape
    assert len(conv.operands) == 2  # no bias


def test_grouped_dilated_conv() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=2, dilations=[2, 2], kernel_shape=[3, 3])
    model = make_model([node], {"x": [1, 4, 9, 9]}, {"y": 4}, [init("w", rand(6, 2, 3, 3))])
    module = import_onnx(model)
    conv = one_op(module, "wpk.conv2d")
    assert attr_int(conv, "groups") == 2 and attr_ints(conv, "dilations") == [2, 2]
    assert result_shape(conv) == [1, 6, 5, 5]


@pytest.mark.parametrize("spatial", [3])
def test_conv_other_than_1d_2d_is_unsupported(spatial: int) -> None:
    x_shape = [1, 2] + [5] * spatial
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv_nd")
    model = make_model([node], {"x": x_shape}, {"y": 2 + spatial}, [init("w", rand(3, 2, *[3] * spatial))])
    with pytest.raises(UnsupportedOperatorError, match=rf"only 1-D and 2-D Conv.*\({spatial}-D\)") as info:
        import_onnx(model)
    assert info.value.op_type == "Conv" and info.value.node_name == "conv_nd"


def test_conv_1d_is_a_2d_conv_with_h_1() -> None:
    """1-D Conv (issue #16: formerly unsupported): reshape to H = 1, conv2d, reshape back; the
    constant weight is reshaped before it is materialized."""
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv1d", strides=[2], pads=[1, 2], dilations=[2])
    model = make_model([node], {"x": [1, 2, 9]}, {"y": 3}, [init("w", rand(3, 2, 3))])
    module = import_onnx(model)
    assert [op.name for op in wpk_ops(module) if op.name != "wpk.weight"] == [
        "wpk.reshape",
        "wpk.conv2d",
        "wpk.reshape",
    ]
    conv = one_op(module, "wpk.conv2d")
    assert attr_ints(conv, "strides") == [1, 2] and attr_ints(conv, "pads") == [0, 1, 0, 2]
    assert attr_ints(conv, "dilations") == [1, 2] and result_shape(conv) == [1, 3, 1, 4]


def test_conv_kernel_shape_must_match_weight() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[5, 5])
    model = make_model([node], {"x": [1, 3, 8, 8]}, {"y": 4}, [init("w", rand(2, 3, 3, 3))])
    with pytest.raises(ShapeError, match=r"node 'c' \(op Conv\): kernel_shape \[5, 5\] does not match"):
        import_onnx(model)


def test_conv_unknown_auto_pad_is_unsupported() -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", auto_pad="SAME_MIDDLE")
    model = make_model([node], {"x": [1, 3, 8, 8]}, {"y": 4}, [init("w", rand(2, 3, 3, 3))])
    with pytest.raises(UnsupportedOperatorError, match="auto_pad 'SAME_MIDDLE' is not supported"):
        import_onnx(model)


def test_matmul_broadcasts_batch_dims() -> None:
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    module = import_onnx(make_model([node], {"a": [2, 1, 3, 4], "b": [5, 4, 6]}, {"y": 4}))
    assert result_shape(one_op(module, "wpk.matmul")) == [2, 5, 3, 6]


def test_gemm_without_c_and_transposed_a() -> None:
    node = helper.make_node("Gemm", ["a", "b"], ["y"], transA=1, beta=0.25)
    model = make_model([node], {"a": [4, 3]}, {"y": [3, 5]}, [init("b", rand(4, 5))])
    module = import_onnx(model)
    gemm = one_op(module, "wpk.gemm")
    assert len(gemm.operands) == 2
    assert attr_bool(gemm, "trans_a") and not attr_bool(gemm, "trans_b")
    assert attr_float(gemm, "beta") == 0.25 and attr_float(gemm, "alpha") == 1.0
    assert result_shape(gemm) == [3, 5]


@pytest.mark.parametrize(("op_type", "wpk_name"), [("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Div", "div")])
def test_binary_ops_broadcast_and_inline_scalars(op_type: str, wpk_name: str) -> None:
    nodes = [
        helper.make_node(op_type, ["x", "bias"], ["t"]),
        helper.make_node(op_type, ["t", "two"], ["y"]),
    ]
    model = make_model(
        nodes,
        {"x": [2, 3, 4]},
        {"y": 3},
        [init("bias", rand(3, 1)), init("two", np.array(2.0, dtype=np.float32))],
    )
    imported = import_onnx_with_weights(model)
    module = imported.module
    assert [op.name for op in wpk_ops(module, f"wpk.{wpk_name}")] == [f"wpk.{wpk_name}"] * 2
    assert result_shape(wpk_ops(module, f"wpk.{wpk_name}")[0]) == [2, 3, 4]
    assert "dense_resource<bias>" in str(module)
    constant = one_op(module, "wpk.constant")
    assert "dense<2.000000e+00> : tensor<f32>" in str(constant)
    assert list(imported.weights.arrays) == ["bias"]


def test_constant_inputs_are_folded() -> None:
    nodes = [
        helper.make_node("Mul", ["a", "b"], ["ab"]),
        helper.make_node("Add", ["x", "ab"], ["y"]),
    ]
    a, b = rand(3), rand(3)
    model = make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, [init("a", a), init("b", b)])
    imported = import_onnx_with_weights(model)
    assert kernel_names(imported.module) == ["wpk.add"]
    (array,) = imported.weights.arrays.values()
    np.testing.assert_array_equal(array, a * b)


def test_unary_ops_and_leaky_relu_default_alpha() -> None:
    nodes = [
        helper.make_node("LeakyRelu", ["x"], ["a"]),
        helper.make_node("LeakyRelu", ["a"], ["y"], alpha=0.2),
    ]
    module = import_onnx(make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}))
    first, second = wpk_ops(module, "wpk.leaky_relu")
    assert attr_float(first, "alpha") == pytest.approx(0.01)
    assert attr_float(second, "alpha") == pytest.approx(0.2)


def test_batch_norm_inference_form() -> None:
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn", epsilon=1e-3)
    params = [init(n, rand(3)) for n in "sbm"] + [init("v", np.abs(rand(3)))]
    module = import_onnx(make_model([node], {"x": [1, 3, 4, 4]}, {"y": 4}, params))
    bn = one_op(module, "wpk.batch_norm")
    assert len(bn.operands) == 5
    assert attr_float(bn, "epsilon") == pytest.approx(1e-3)
    assert result_shape(bn) == [1, 3, 4, 4]


def test_batch_norm_half_precision_params_become_f32() -> None:
    # BatchNormalization-15 lets scale/B (T1) and mean/var (T2) differ from X (T).
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    scale = rand(3).astype(np.float16)
    params = [init("s", scale), init("b", rand(3).astype(np.float16))]
    params += [init("m", rand(3).astype(np.float64)), init("v", np.abs(rand(3)).astype(np.float64))]
    imported = import_onnx_with_weights(make_model([node], {"x": [1, 3, 2, 2]}, {"y": 4}, params, opset=15))
    assert all(a.dtype == np.float32 for a in imported.weights.arrays.values())
    np.testing.assert_array_equal(imported.weights.arrays["s"], scale.astype(np.float32))


def test_batch_norm_training_mode_is_unsupported() -> None:
    node = helper.make_node(
        "BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], name="bn_train", training_mode=1
    )
    params = [init(n, rand(3)) for n in "sbmv"]
    model = make_model([node], {"x": [1, 3, 4, 4]}, {"y": 4}, params, opset=15)
    with pytest.raises(UnsupportedOperatorError, match="training_mode"):
        import_onnx(model)


def test_batch_norm_extra_outputs_used_is_unsupported() -> None:
    # Opset 9-13 BatchNormalization declares 1 or 5 outputs; here the running mean is a graph output.
    node = helper.make_node(
        "BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "mean", "var", "sm", "sv"], name="bn2"
    )
    params = [init(n, rand(3)) for n in "sbmv"]
    graph = helper.make_graph(
        [node],
        "bn",
        [helper.make_tensor_value_info("x", F32, [1, 3, 2, 2])],
        [helper.make_tensor_value_info("y", F32, [1, 3, 2, 2]), helper.make_tensor_value_info("mean", F32, [3])],
        params,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    with pytest.raises(UnsupportedOperatorError, match=r"node 'bn2' .*'mean'\) is used"):
        import_onnx(model)


def test_max_pool_ceil_mode_and_dilations() -> None:
    node = helper.make_node(
        "MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1, pads=[1, 1, 1, 1]
    )
    module = import_onnx(make_model([node], {"x": [1, 2, 8, 8]}, {"y": 4}))
    pool = one_op(module, "wpk.max_pool")
    assert attr_bool(pool, "ceil_mode") and attr_ints(pool, "pads") == [1, 1, 1, 1]
    assert result_shape(pool) == [1, 2, 5, 5]


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
def test_ceil_mode_drops_a_window_starting_in_the_padding(op_type: str) -> None:
    # onnxruntime (and PyTorch) give 2; ONNX shape inference says 3. The importer follows onnxruntime.
    nodes = [
        helper.make_node(op_type, ["x"], ["p"], kernel_shape=[2, 2], strides=[3, 3], ceil_mode=1, pads=[0, 0, 1, 1]),
        helper.make_node("Relu", ["p"], ["y"]),
    ]
    module = import_onnx(make_model(nodes, {"x": [1, 1, 5, 5]}, {"y": 4}))
    assert "-> tensor<1x1x2x2xf32>" in str(module)


def test_max_pool_used_indices_output_is_unsupported() -> None:
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2, 2])]
    graph = helper.make_graph(
        nodes,
        "mp",
        [helper.make_tensor_value_info("x", F32, [1, 1, 4, 4])],
        [
            helper.make_tensor_value_info("y", F32, [1, 1, 3, 3]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, [1, 1, 3, 3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOperatorError, match=r"Indices, 'idx'\) is used"):
        import_onnx(model)


def test_max_pool_storage_order_is_unsupported() -> None:
    node = helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], storage_order=1)
    with pytest.raises(UnsupportedOperatorError, match="storage_order"):
        import_onnx(make_model([node], {"x": [1, 1, 4, 4]}, {"y": 4}))


def test_average_pool_attributes_and_opset19_dilations() -> None:
    node = helper.make_node(
        "AveragePool",
        ["x"],
        ["y"],
        kernel_shape=[2, 2],
        dilations=[2, 2],
        count_include_pad=1,
        auto_pad="SAME_UPPER",
    )
    module = import_onnx(make_model([node], {"x": [1, 2, 5, 5]}, {"y": 4}, opset=19))
    pool = one_op(module, "wpk.avg_pool")
    assert attr_bool(pool, "count_include_pad")
    assert attr_ints(pool, "dilations") == [2, 2]
    assert attr_ints(pool, "pads") == [1, 1, 1, 1]
    assert result_shape(pool) == [1, 2, 5, 5]


def test_pool_3d_is_unsupported() -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], name="ap3", kernel_shape=[2, 2, 2])
    with pytest.raises(UnsupportedOperatorError, match=r"ap3.*only 1-D and 2-D AveragePool"):
        import_onnx(make_model([node], {"x": [1, 2, 6, 6, 6]}, {"y": 5}))


def test_pool_1d_is_a_2d_pool_with_h_1() -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], name="ap1", kernel_shape=[2], pads=[0, 1])
    module = import_onnx(make_model([node], {"x": [1, 2, 6]}, {"y": 3}))
    pool = one_op(module, "wpk.avg_pool")
    assert attr_ints(pool, "kernel_shape") == [1, 2] and attr_ints(pool, "pads") == [0, 0, 0, 1]
    assert result_shape(pool) == [1, 2, 1, 6] and len(wpk_ops(module, "wpk.reshape")) == 2


def test_global_average_pool() -> None:
    node = helper.make_node("GlobalAveragePool", ["x"], ["y"])
    module = import_onnx(make_model([node], {"x": [2, 3, 5, 7]}, {"y": 4}))
    op = one_op(module, "wpk.global_avg_pool")
    assert result_shape(op) == [2, 3, 1, 1]


def test_shape_ops() -> None:
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),  # [2, 3, 4] -> [2, 0, -1] = [2, 3, 4]
        helper.make_node("Reshape", ["r", "shape2"], ["r2"]),  # -> [6, 4]
        helper.make_node("Transpose", ["r2"], ["t"]),  # default perm = reversed
        helper.make_node("Flatten", ["x"], ["f"], axis=-1),
        helper.make_node("Concat", ["t", "t"], ["y"], axis=-1),
    ]
    model = make_model(
        nodes,
        {"x": [2, 3, 4]},
        {"y": [4, 12], "f": [6, 4]},
        [init("shape", np.array([2, 0, -1], np.int64)), init("shape2", np.array([-1, 4], np.int64))],
    )
    imported = import_onnx_with_weights(model)
    module = imported.module
    reshapes = wpk_ops(module, "wpk.reshape")
    assert [result_shape(op) for op in reshapes] == [[2, 3, 4], [6, 4]]
    assert attr_ints(one_op(module, "wpk.transpose"), "perm") == [1, 0]
    flatten = one_op(module, "wpk.flatten")
    assert attr_int(flatten, "axis") == 2 and result_shape(flatten) == [6, 4]
    concat = one_op(module, "wpk.concat")
    assert attr_int(concat, "axis") == 1 and result_shape(concat) == [4, 12]
    # int64 shape initializers are read at import: no op, no weight.
    assert imported.weights.arrays == {}
    assert "wpk.weight" not in str(module) and "i64>" not in str(module).split("{-#")[0].replace("array<i64", "")


def test_squeeze_unsqueeze_axes_attribute_vs_input() -> None:
    def model(opset: int) -> onnx.ModelProto:
        if opset >= 13:
            nodes = [
                helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
                helper.make_node("Squeeze", ["u", "axes"], ["y"]),
            ]
            inits = [init("axes", np.array([0, -1], np.int64))]
        else:
            nodes = [
                helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0, -1]),
                helper.make_node("Squeeze", ["u"], ["y"], axes=[0, -1]),
            ]
            inits = []
        return make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, inits, opset=opset)

    for opset in (11, 13):
        module = import_onnx(model(opset))
        reshapes = wpk_ops(module, "wpk.reshape")
        assert [result_shape(op) for op in reshapes] == [[1, 2, 3, 1], [2, 3]]


# ----------------------------------------------------------------------------
# Attributes that became inputs across opsets.


@pytest.mark.parametrize("opset", [11, 13])
def test_clip_min_max_inputs(opset: int) -> None:
    nodes = [
        helper.make_node("Clip", ["x", "lo", "hi"], ["a"]),
        helper.make_node("Clip", ["a", "", "hi"], ["b"]),
        helper.make_node("Clip", ["b"], ["y"]),
    ]
    inits = [init("lo", np.array(-1.5, np.float32)), init("hi", np.array(6.0, np.float32))]
    imported = import_onnx_with_weights(make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, inits, opset=opset))
    first, second, third = wpk_ops(imported.module, "wpk.clip")
    assert (attr_float(first, "min"), attr_float(first, "max")) == (-1.5, 6.0)
    assert (attr_float(second, "min"), attr_float(second, "max")) == (-math.inf, 6.0)
    assert (attr_float(third, "min"), attr_float(third, "max")) == (-math.inf, math.inf)
    # min/max scalars are read at import, never materialized.
    assert kernel_names(imported.module) == ["wpk.clip"] * 3
    assert "wpk.constant" not in str(imported.module)


def test_clip_non_constant_bound_is_a_max_step() -> None:
    """A run-time bound (issue #16: formerly unsupported) becomes wpk.max / wpk.min; a bound
    that is not one element is one error naming the node."""
    node = helper.make_node("Clip", ["x", "lo"], ["y"], name="clip_dyn")
    model = make_model([node], {"x": [2, 3], "lo": []}, {"y": [2, 3]})
    assert [op.name for op in wpk_ops(import_onnx(model))] == ["wpk.max"]
    wide = make_model([node], {"x": [2, 3], "lo": [3]}, {"y": [2, 3]})
    with pytest.raises(ShapeError, match=r"clip_dyn.*min must be a scalar, got shape \[3\]"):
        import_onnx(wide)


@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_mean_axes_attribute_vs_input(opset: int) -> None:
    if opset < 18:
        node = helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1, 1], keepdims=0)
        inits = []
    else:
        node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)
        inits = [init("axes", np.array([-1, 1], np.int64))]
    module = import_onnx(make_model([node], {"x": [2, 3, 4]}, {"y": 1}, inits, opset=opset))
    op = one_op(module, "wpk.reduce_mean")
    assert attr_ints(op, "axes") == [1, 2] and not attr_bool(op, "keepdims")
    assert result_shape(op) == [2]


@pytest.mark.parametrize("opset", [13, 18])
def test_reduce_mean_no_axes_reduces_everything(opset: int) -> None:
    node = helper.make_node("ReduceMean", ["x"], ["y"])
    module = import_onnx(make_model([node], {"x": [2, 3]}, {"y": 2}, opset=opset))
    op = one_op(module, "wpk.reduce_mean")
    assert attr_ints(op, "axes") == [0, 1] and attr_bool(op, "keepdims")
    assert result_shape(op) == [1, 1]


def test_reduce_mean_noop_with_empty_axes_is_identity() -> None:
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], noop_with_empty_axes=1),
        helper.make_node("Relu", ["m"], ["y"]),
    ]
    module = import_onnx(make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, opset=18))
    assert kernel_names(module) == ["wpk.relu"]
    assert one_op(module, "wpk.relu").operands[0] == module.body.operations[0].regions[0].blocks[0].arguments[0]


def test_pad_opset11_inputs() -> None:
    node = helper.make_node("Pad", ["x", "pads", "value"], ["y"], mode="constant")
    inits = [init("pads", np.array([0, 1, 2, 0, 3, 4], np.int64)), init("value", np.array(1.5, np.float32))]
    module = import_onnx(make_model([node], {"x": [1, 2, 3]}, {"y": 3}, inits, opset=11))
    op = one_op(module, "wpk.pad")
    assert attr_ints(op, "pads") == [0, 1, 2, 0, 3, 4]
    assert attr_str(op, "mode") == "constant" and attr_float(op, "value") == 1.5
    assert result_shape(op) == [1, 6, 9]


def test_pad_opset18_axes_input() -> None:
    node = helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], mode="reflect")
    inits = [init("pads", np.array([1, 2, 1, 0], np.int64)), init("axes", np.array([-1, 1], np.int64))]
    module = import_onnx(make_model([node], {"x": [1, 4, 5]}, {"y": 3}, inits, opset=18))
    op = one_op(module, "wpk.pad")
    # axes [-1, 1]: dim 2 gets (1, 1), dim 1 gets (2, 0); all begins then all ends.
    assert attr_ints(op, "pads") == [0, 2, 1, 0, 0, 1]
    assert attr_str(op, "mode") == "reflect" and attr_float(op, "value") == 0.0
    assert result_shape(op) == [1, 6, 7]


@pytest.mark.parametrize("mode", ["edge", "wrap"])
def test_pad_modes(mode: str) -> None:
    node = helper.make_node("Pad", ["x", "pads"], ["y"], mode=mode)
    inits = [init("pads", np.array([1, 1, 1, 1], np.int64))]
    module = import_onnx(make_model([node], {"x": [3, 3]}, {"y": 2}, inits, opset=19))
    op = one_op(module, "wpk.pad")
    assert attr_str(op, "mode") == mode


def test_pad_unknown_mode_is_unsupported() -> None:
    node = helper.make_node("Pad", ["x", "pads"], ["y"], name="pad_bad", mode="mirror")
    inits = [init("pads", np.array([1, 1, 1, 1], np.int64))]
    with pytest.raises(UnsupportedOperatorError, match="mirror"):
        import_onnx(make_model([node], {"x": [3, 3]}, {"y": [5, 5]}, inits, opset=13))


def test_softmax_opset11_coerces_to_2d() -> None:
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    module = import_onnx(make_model([node], {"x": [2, 3, 4]}, {"y": [2, 3, 4]}, opset=11))
    assert kernel_names(module) == ["wpk.reshape", "wpk.softmax", "wpk.reshape"]
    first, second = wpk_ops(module, "wpk.reshape")
    softmax = one_op(module, "wpk.softmax")
    assert result_shape(first) == [2, 12] and attr_int(softmax, "axis") == 1
    assert result_shape(second) == [2, 3, 4]


def test_softmax_opset13_uses_the_axis() -> None:
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    module = import_onnx(make_model([node], {"x": [2, 3, 4]}, {"y": [2, 3, 4]}, opset=13))
    assert kernel_names(module) == ["wpk.softmax"]
    assert attr_int(one_op(module, "wpk.softmax"), "axis") == 1


def test_softmax_default_axis_per_opset() -> None:
    node = helper.make_node("Softmax", ["x"], ["y"])
    module = import_onnx(make_model([node], {"x": [2, 3, 4]}, {"y": [2, 3, 4]}, opset=13))
    assert attr_int(one_op(module, "wpk.softmax"), "axis") == 2
    module = import_onnx(make_model([node], {"x": [2, 3, 4]}, {"y": [2, 3, 4]}, opset=11))
    assert kernel_names(module) == ["wpk.reshape", "wpk.softmax", "wpk.reshape"]


# ----------------------------------------------------------------------------
# Pass-through ops.


def test_identity_and_dropout_disappear() -> None:
    nodes = [
        helper.make_node("Identity", ["x"], ["a"]),
        helper.make_node("Dropout", ["a"], ["b"], name="drop"),
        helper.make_node("Relu", ["b"], ["c"]),
        helper.make_node("Dropout", ["c", "ratio"], ["d"]),
        helper.make_node("Identity", ["d"], ["y"]),
    ]
    model = make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}, [init("ratio", np.array(0.5, np.float32))])
    module = import_onnx(model)
    assert [op.name for op in ops(module)] == ["wpk.relu", "func.return"]


def test_dropout_with_used_mask_is_unsupported() -> None:
    node = helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop_mask")
    graph = helper.make_graph(
        [node],
        "d",
        [helper.make_tensor_value_info("x", F32, [2, 3])],
        [
            helper.make_tensor_value_info("y", F32, [2, 3]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, [2, 3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOperatorError, match=r"mask, 'mask'\) is used"):
        import_onnx(model)


# ----------------------------------------------------------------------------
# Weights.


def test_weights_are_dense_resources_in_the_weight_table() -> None:
    weight, bias = rand(4, 3, 3, 3), rand(4)
    const = rand(1, 4, 1, 1)
    nodes = [
        helper.make_node("Conv", ["x", "features.0/weight:0", "9bias"], ["c"]),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(const)),
        helper.make_node("Mul", ["c", "k"], ["y"]),
    ]
    model = make_model(nodes, {"x": [1, 3, 5, 5]}, {"y": 4}, [init("features.0/weight:0", weight), init("9bias", bias)])
    imported = import_onnx_with_weights(model)
    assert isinstance(imported, ImportedModel)
    text = str(imported.module)
    body = text.split("{-#")[0]
    names = re.findall(r"dense_resource<([^>]+)>", body)
    assert len(names) == 3
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in names)
    assert "features_0_weight_0" in names
    assert set(imported.weights.arrays) == set(names)
    np.testing.assert_array_equal(imported.weights.arrays["features_0_weight_0"], weight)
    weight_ops = wpk_ops(imported.module, "wpk.weight")
    arrays = [imported.weights.value_of(op) for op in weight_ops]
    for expected, got in zip((weight, bias, const), arrays, strict=True):
        np.testing.assert_array_equal(got, expected)
    # Nothing large is printed inline in the body.
    assert "dense<" not in body
    # The printed resources decode to the same arrays.
    decoded = WeightTable.from_module(imported.module)
    for name, array in imported.weights.arrays.items():
        np.testing.assert_array_equal(decoded.arrays[name].reshape(array.shape), array)


def test_resource_names_are_read_back_after_renaming() -> None:
    context = create_context()
    model = make_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], {"x": [2, 3]}, {"y": [2, 3]}, [init("w", rand(2, 3))]
    )
    first = import_onnx_with_weights(model, context=context)
    second_model = make_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], {"x": [2, 3]}, {"y": [2, 3]}, [init("w", rand(2, 3))]
    )
    second = import_onnx_with_weights(second_model, context=context)
    assert second.context is context
    (name1,), (name2,) = first.weights.arrays, second.weights.arrays
    assert name1 != name2
    op = one_op(second.module, "wpk.weight")
    np.testing.assert_array_equal(second.weights.value_of(op), numpy_helper.to_array(second_model.graph.initializer[0]))


def test_imported_model_signature() -> None:
    nodes = [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Add", ["r", "b"], ["s"])]
    imported = import_onnx_with_weights(make_model(nodes, {"a": [2, 3], "b": [3]}, {"s": [2, 3], "r": [2, 3]}))
    assert imported.input_names == ["a", "b"] and imported.output_names == ["s", "r"]
    assert imported.input_shapes == {"a": (2, 3), "b": (3,)}
    assert imported.output_shapes == {"s": (2, 3), "r": (2, 3)}
    assert 'wpk.output_names = ["s", "r"]' in str(imported.module)


def test_initializer_listed_as_graph_input_is_not_an_argument() -> None:
    model = make_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], {"x": [2, 3], "w": [2, 3]}, {"y": [2, 3]}, [init("w", rand(2, 3))]
    )
    imported = import_onnx_with_weights(model)
    assert imported.input_names == ["x"]
    assert "func.func @main(%arg0: tensor<2x3xf32>)" in str(imported.module)


# ----------------------------------------------------------------------------
# Errors.


def test_unsupported_op_names_op_node_and_supported_list() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("LpNormalization", ["a"], ["y"], name="my_lpnorm"),
    ]
    with pytest.raises(UnsupportedOperatorError) as info:
        import_onnx(make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}))
    message = str(info.value)
    assert "LpNormalization" in message and "my_lpnorm" in message
    assert "Supported ops: " + ", ".join(SUPPORTED_OPS) in message
    assert info.value.supported == list(SUPPORTED_OPS)


def test_unsupported_unnamed_node_and_unknown_op_type() -> None:
    nodes = [helper.make_node("FancyOp", ["x"], ["y"])]
    with pytest.raises(UnsupportedOperatorError, match=r"FancyOp_0.*FancyOp"):
        import_onnx(make_model(nodes, {"x": [2, 3]}, {"y": [2, 3]}))


def test_foreign_domain_is_unsupported() -> None:
    node = helper.make_node("Gelu", ["x"], ["y"], name="ms_gelu", domain="com.microsoft")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", F32, [2])], [helper.make_tensor_value_info("y", F32, [2])]
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)]
    )
    with pytest.raises(UnsupportedOperatorError, match=r"com\.microsoft"):
        import_onnx(model)


def test_supported_ops_is_sorted_and_complete() -> None:
    assert list(SUPPORTED_OPS) == sorted(SUPPORTED_OPS)
    required = {
        "Conv", "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip",
        "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "Softmax", "Reshape", "Flatten",
        "Transpose", "Concat", "Pad", "ReduceMean", "Identity", "Dropout", "Constant",
    }  # fmt: skip
    assert required <= set(SUPPORTED_OPS)


@pytest.mark.parametrize("payload", [b"\x00\x01garbage\xff\xff\xff", b"not an onnx model at all"])
def test_malformed_file_is_a_one_line_model_load_error(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(payload)
    with pytest.raises(ModelLoadError) as info:
        import_onnx(path)
    message = str(info.value)
    assert "\n" not in message and message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_truncated_file_is_a_model_load_error(tmp_path: Path) -> None:
    model = make_model(
        [helper.make_node("Add", ["x", "w"], ["y"])], {"x": [16, 16]}, {"y": [16, 16]}, [init("w", rand(16, 16))]
    )
    data = model.SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError) as info:
        import_onnx(str(path))
    assert "\n" not in str(info.value)


def test_missing_file_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot read"):
        import_onnx(tmp_path / "missing.onnx")


@pytest.mark.parametrize("opset", [0, 29])  # no opset at all, above MAX_OPSET
def test_opset_out_of_range(opset: int) -> None:
    """Newer than supported, or no opset at all (opsets 1..10 are converted to 11 instead of
    refused: tests/py/test_loader_leniency.py)."""
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": [2]}, {"y": [2]}, opset=opset)
    with pytest.raises(ModelLoadError, match=f"opset {opset}"):
        import_onnx(model)


def test_opset_10_is_converted_not_refused() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": [2]}, {"y": [2]}, opset=10)
    assert import_onnx(model) is not None


def test_dynamic_dim_is_a_shape_error_with_the_fix() -> None:
    model = make_model([helper.make_node("Relu", ["input"], ["y"])], {"input": ["N", 3, 224, 224]}, {"y": 4})
    with pytest.raises(ShapeError) as info:
        import_onnx(model)
    message = str(info.value)
    assert "'input'" in message
    assert "--input-shape input=1x3x224x224" in message
    assert "input_shapes={'input': (1, 3, 224, 224)}" in message


def test_input_shapes_override_makes_it_work(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["input"], ["r"]), helper.make_node("Flatten", ["r"], ["y"])]
    model = make_model(nodes, {"input": ["N", 3, "H", "W"]}, {"y": ["N", "F"]})
    path = tmp_path / "dynamic.onnx"
    onnx.save(model, path)
    imported = import_onnx_with_weights(path, input_shapes={"input": (4, 3, 5, 5)})
    assert imported.input_shapes == {"input": (4, 3, 5, 5)}
    assert imported.output_shapes == {"y": (4, 75)}
    assert "func.func @main(%arg0: tensor<4x3x5x5xf32>) -> tensor<4x75xf32>" in str(imported.module)


def test_input_shapes_override_replaces_static_shapes() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    model = make_model(nodes, {"x": [1, 3]}, {"y": [1, 3]})
    model.graph.value_info.append(helper.make_tensor_value_info("r", F32, [1, 3]))
    assert import_onnx_with_weights(model, {"x": [8, 3]}).output_shapes == {"y": (8, 3)}


def test_input_shapes_unknown_name_or_wrong_rank() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ["N", 3]}, {"y": 2})
    with pytest.raises(ShapeError, match="'nope'"):
        import_onnx(model, {"nope": (1, 3)})
    with pytest.raises(ShapeError, match="rank"):
        import_onnx(model, {"x": (1, 3, 1)})


def test_non_f32_graph_input_is_rejected() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": [2, 3]}, {"y": [2, 3]})
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    with pytest.raises(ShapeError, match="graph input 'x' has element type DOUBLE"):
        import_onnx(model)


def test_integer_graph_input_is_rejected() -> None:
    """A graph input of an element type Woodpecker does not compile (uint8; float32, int64,
    int32 and bool are) is one ShapeError naming it."""
    node = helper.make_node("Add", ["x", "k"], ["y"], name="int_add")
    model = make_model([node], {"x": [2]}, {"y": [2]}, [init("k", np.array([1, 2], np.uint8))])
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.UINT8
    with pytest.raises(ShapeError, match="graph input 'x' has element type UINT8"):
        import_onnx(model)


def test_int64_input_to_a_float_op_is_refused_naming_the_node() -> None:
    """An int64 graph input is compiled, but an op taking float32 only refuses it at import
    (Add takes int64 at run time now: wpk.integer_binary; PRelu does not)."""
    node = helper.make_node("PRelu", ["x", "k"], ["y"], name="int_prelu")
    model = make_model([node], {"x": [2]}, {"y": [2]}, [init("k", np.array([1, 2], np.int64))])
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.INT64
    refusal = r"int_prelu.*'x' is int64 data at run time; PRelu takes float32"
    with pytest.raises(UnsupportedOperatorError, match=refusal):
        import_onnx(model)


def test_invalid_model_is_a_model_load_error() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": [2]}, {"y": [2]})
    model.ir_version = 0
    with pytest.raises(ModelLoadError):
        import_onnx(model)


def test_shape_inference_failure_is_a_shape_error() -> None:
    node = helper.make_node("Add", ["a", "b"], ["y"], name="bad_add")
    model = make_model([node], {"a": [2, 3], "b": [4, 5]}, {"y": 2})
    with pytest.raises(ShapeError):
        import_onnx(model)


# ----------------------------------------------------------------------------
# End to end against onnxruntime (needs the lowering and the CPU backend).


def _compare_with_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> None:
    ort = pytest.importorskip("onnxruntime")
    woodpecker = pytest.importorskip("woodpecker")
    compiled = woodpecker.compile(model)
    expected = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    got = compiled.run(None, feeds)
    assert len(got) == len(expected)
    for actual, reference in zip(got, expected, strict=True):
        assert actual.shape == reference.shape
        np.testing.assert_allclose(actual, reference, rtol=1e-4, atol=1e-5)


def test_small_cnn_matches_onnxruntime() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], group=2, auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("LeakyRelu", ["c2"], ["l2"], alpha=0.1),
        helper.make_node("AveragePool", ["l2"], ["a2"], kernel_shape=[2, 2], pads=[1, 1, 0, 0], count_include_pad=1),
        helper.make_node("Clip", ["a2", "zero", "six"], ["k2"]),
        helper.make_node("GlobalAveragePool", ["k2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1, alpha=0.5),
        helper.make_node("Dropout", ["logits"], ["d"]),
        helper.make_node("Softmax", ["d"], ["y"], axis=1),
    ]
    inits = [
        init("w1", rand(8, 3, 3, 3)),
        init("b1", rand(8)),
        init("s", rand(8)),
        init("b", rand(8)),
        init("m", rand(8)),
        init("v", np.abs(rand(8)) + 0.5),
        init("w2", rand(6, 4, 3, 3)),
        init("zero", np.array(0.0, np.float32)),
        init("six", np.array(6.0, np.float32)),
        init("fc_w", rand(5, 6)),
        init("fc_b", rand(5)),
    ]
    model = make_model(nodes, {"x": [2, 3, 11, 11]}, {"y": [2, 5]}, inits, opset=11)
    _compare_with_onnxruntime(model, {"x": rand(2, 3, 11, 11)})


def test_shape_ops_and_reductions_match_onnxruntime() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),  # [2, 5, 4]
        helper.make_node("Pad", ["t", "pads", "", "pad_axes"], ["p"], mode="reflect"),  # [2, 5, 7]
        helper.make_node("ReduceMean", ["p", "rm_axes"], ["mean"]),  # [2, 1, 7]
        helper.make_node("Sub", ["p", "mean"], ["centered"]),
        helper.make_node("Sigmoid", ["centered"], ["sig"]),
        helper.make_node("Tanh", ["centered"], ["tanh"]),
        helper.make_node("Concat", ["sig", "tanh"], ["cat"], axis=-2),  # [2, 10, 7]
        helper.make_node("MatMul", ["cat", "w"], ["mm"]),  # [2, 10, 3]
        helper.make_node("Div", ["mm", "scale"], ["scaled"]),
        helper.make_node("Unsqueeze", ["scaled", "unsq_axes"], ["u"]),  # [2, 1, 10, 3]
        helper.make_node("Reshape", ["u", "shape"], ["r"]),  # [2, 30]
        helper.make_node("Softmax", ["r"], ["s"]),
        helper.make_node("Identity", ["s"], ["y"]),
    ]
    inits = [
        init("pads", np.array([1, 2], np.int64)),
        init("pad_axes", np.array([-1], np.int64)),
        init("rm_axes", np.array([1], np.int64)),
        init("w", rand(7, 3)),
        init("scale", np.array([0.5, 2.0, 4.0], np.float32)),
        init("unsq_axes", np.array([1], np.int64)),
        init("shape", np.array([0, -1], np.int64)),
    ]
    model = make_model(nodes, {"x": [2, 4, 5]}, {"y": [2, 30]}, inits, opset=18)
    _compare_with_onnxruntime(model, {"x": rand(2, 4, 5)})


def test_concat_of_three_is_a_verified_chain_of_binary_concats() -> None:
    nodes = [helper.make_node("Concat", ["a", "b", "c"], ["y"], axis=1)]
    model = make_model(nodes, {"a": [2, 1], "b": [2, 2], "c": [2, 3]}, {"y": [2, 6]})
    module = import_onnx(model)
    concats = wpk_ops(module, "wpk.concat")
    assert [result_shape(op) for op in concats] == [[2, 3], [2, 6]]
    assert all(len(op.operands) == 2 for op in concats)
    module.operation.verify()
