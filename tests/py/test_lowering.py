"""`wpk` -> linalg lowering: every op, built directly with create_op, lowered, JIT-run and
compared with a float64 numpy reference (tests/py/numpy_reference.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy_reference as ref
import pytest
from mlir import ir
from mlir.dialects import func
from mlir.passmanager import PassManager

from woodpecker.backend import compile_cpu
from woodpecker.backend.cpu import CpuOptions
from woodpecker.dialect import (
    create_context,
    create_op,
    f32_attr,
    python_attr,
    tensor_type,
    weight_attr,
)
from woodpecker.errors import CompilationError
from woodpecker.lowering import LOWERINGS, PASS_NAME, lower_to_linalg

RTOL, ATOL = 1e-4, 1e-5
AttrValue = bool | int | float | str | Sequence[int]


_attr = python_attr


def _attrs(values: dict[str, AttrValue]) -> dict[str, ir.Attribute]:
    return {k: _attr(v) for k, v in values.items()}


@dataclass
class Lowered:
    """The lowered IR text and the JIT-computed outputs of one module."""

    ir_text: str
    outputs: list[np.ndarray]


Builder = Callable[[list[ir.Value]], list[ir.Value]]


def lower_and_run(
    inputs: Sequence[np.ndarray],
    out_shapes: Sequence[Sequence[int]],
    build: Builder,
    use_pass_manager: bool = True,
) -> Lowered:
    """Builds `func @main(inputs) -> outputs` with `build`, lowers it, JIT-compiles and runs it."""
    inputs = [np.ascontiguousarray(a, dtype=np.float32) for a in inputs]
    with create_context() as ctx, ir.Location.unknown():
        module = ir.Module.create()
        arg_types = [tensor_type(a.shape) for a in inputs]
        result_types = [tensor_type(s) for s in out_shapes]
        with ir.InsertionPoint(module.body):
            fn = func.FuncOp("main", (arg_types, result_types))
            block = fn.add_entry_block()
            with ir.InsertionPoint(block):
                func.ReturnOp(build(list(block.arguments)))
        assert module.operation.verify()
        if use_pass_manager:
            pm = PassManager(context=ctx)
            pm.add(lower_to_linalg, name=PASS_NAME)
            pm.run(module.operation)
        else:
            lower_to_linalg(module.operation)
        assert module.operation.verify()
        text = str(module)
        assert "wpk." not in text.split("{-#")[0]
        exe = compile_cpu(module, CpuOptions(parallel=False, llvm_opt_level=2))
    return Lowered(text, exe(inputs))


def run_op(
    name: str,
    inputs: Sequence[np.ndarray],
    out_shape: Sequence[int],
    attrs: dict[str, AttrValue] | None = None,
) -> Lowered:
    """One `wpk.<name>` op applied to the function arguments."""

    def build(args: list[ir.Value]) -> list[ir.Value]:
        return [create_op(name, args, [tensor_type(out_shape)], _attrs(attrs or {})).result]

    return lower_and_run(inputs, [out_shape], build)


def check(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------
# Constants.


def test_weight_and_constant_become_arith_constants() -> None:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    c = np.array([1.0, -2.0, 3.0, 0.5], np.float32)
    x = rand(3, 4)

    def build(args: list[ir.Value]) -> list[ir.Value]:
        weight = create_op("weight", [], [tensor_type([3, 4])], {"value": weight_attr(w, "w0")}).result
        const = create_op("constant", [], [tensor_type([4])], {"value": ir.DenseElementsAttr.get(c)}).result
        splat = create_op(
            "constant",
            [],
            [tensor_type([3, 1])],
            {"value": ir.DenseElementsAttr.get_splat(tensor_type([3, 1]), f32_attr(0.25))},
        ).result
        s = create_op("add", [args[0], weight], [tensor_type([3, 4])]).result
        p = create_op("mul", [s, const], [tensor_type([3, 4])]).result
        return [create_op("sub", [p, splat], [tensor_type([3, 4])]).result]

    lowered = lower_and_run([x], [[3, 4]], build)
    assert "dense_resource<w0>" in lowered.ir_text
    assert "arith.constant dense<[1.000000e+00, -2.000000e+00" in lowered.ir_text
    check(lowered.outputs[0], (x.astype(np.float64) + w) * c - 0.25)


def test_integer_constant_is_converted_to_f32() -> None:
    x = rand(2, 3)

    def build(args: list[ir.Value]) -> list[ir.Value]:
        value = ir.DenseElementsAttr.get(np.array([[1], [-2]], np.int64))
        const = create_op("constant", [], [tensor_type([2, 1])], {"value": value}).result
        return [create_op("mul", [args[0], const], [tensor_type([2, 3])]).result]

    check(lower_and_run([x], [[2, 3]], build).outputs[0], x.astype(np.float64) * np.array([[1.0], [-2.0]]))


# ----------------------------------------------------------------------------
# Convolution.

CONV_CASES = [
    # (x shape, w shape, bias, strides, pads, dilations, groups, named op)
    ((1, 3, 8, 8), (4, 3, 3, 3), True, [1, 1], [1, 1, 1, 1], [1, 1], 1, "linalg.conv_2d_nchw_fchw"),
    ((2, 3, 9, 10), (5, 3, 3, 2), True, [2, 2], [0, 1, 2, 0], [1, 1], 1, "linalg.conv_2d_nchw_fchw"),
    ((1, 2, 11, 9), (3, 2, 3, 3), False, [1, 2], [1, 0, 0, 2], [2, 2], 1, "linalg.conv_2d_nchw_fchw"),
    ((1, 4, 9, 9), (6, 2, 3, 3), True, [2, 2], [1, 0, 1, 0], [1, 2], 2, "linalg.conv_2d_ngchw_gfchw"),
    ((2, 4, 7, 7), (4, 1, 3, 3), True, [1, 1], [1, 1, 1, 1], [1, 1], 4, "linalg.depthwise_conv_2d_nchw_chw"),
    ((1, 3, 8, 7), (3, 1, 3, 2), False, [2, 1], [2, 1, 0, 1], [2, 1], 3, "linalg.depthwise_conv_2d_nchw_chw"),
    ((1, 3, 6, 6), (6, 1, 3, 3), True, [1, 1], [1, 1, 1, 1], [1, 1], 3, "linalg.conv_2d_ngchw_gfchw"),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv2d(case: tuple) -> None:
    x_shape, w_shape, has_bias, strides, pads, dilations, groups, named = case
    x, w = rand(*x_shape), rand(*w_shape, seed=1)
    b = rand(w_shape[0], seed=2) if has_bias else None
    expected = ref.conv2d(x, w, b, strides, pads, dilations, groups)
    inputs = [x, w] if b is None else [x, w, b]
    attrs = {"strides": strides, "pads": pads, "dilations": dilations, "groups": groups}
    lowered = run_op("conv2d", inputs, expected.shape, attrs)
    assert named in lowered.ir_text
    assert ("tensor.pad" in lowered.ir_text) == any(pads)
    check(lowered.outputs[0], expected)


# ----------------------------------------------------------------------------
# MatMul and Gemm.

MATMUL_CASES = [
    # (lhs shape, rhs shape, named op)
    ((5, 7), (7, 3), "linalg.matmul"),
    ((7,), (7, 3), "linalg.matmul"),
    ((5, 7), (7,), "linalg.matmul"),
    ((7,), (7,), "linalg.matmul"),
    ((2, 3, 5, 7), (7, 4), "linalg.matmul"),
    ((7,), (2, 7, 4), "linalg.batch_matmul"),
    ((2, 5, 7), (7,), "linalg.matmul"),
    ((3, 5, 7), (3, 7, 4), "linalg.batch_matmul"),
    ((2, 1, 5, 7), (3, 7, 4), "linalg.batch_matmul"),
    ((5, 7), (2, 3, 7, 4), "linalg.batch_matmul"),
    ((1, 5, 7), (4, 1, 7, 2), "linalg.batch_matmul"),
]


@pytest.mark.parametrize("case", MATMUL_CASES, ids=[f"{a}x{b}" for a, b, _ in MATMUL_CASES])
def test_matmul(case: tuple) -> None:
    a_shape, b_shape, named = case
    a, b = rand(*a_shape), rand(*b_shape, seed=3)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    lowered = run_op("matmul", [a, b], expected.shape)
    assert named in lowered.ir_text
    check(lowered.outputs[0], expected)


GEMM_CASES = [
    # (M, K, N, trans_a, trans_b, alpha, beta, C shape or None)
    (4, 5, 3, False, False, 1.0, 1.0, (4, 3)),
    (4, 5, 3, True, False, 0.5, 2.0, (3,)),
    (4, 5, 3, False, True, 1.0, -1.0, (4, 1)),
    (4, 5, 3, True, True, 2.0, 0.5, (1, 3)),
    (4, 5, 3, False, True, 1.5, 1.0, ()),
    (4, 5, 3, True, False, 0.25, 1.0, None),
    (6, 2, 5, False, False, 1.0, 0.0, (6, 5)),
]


@pytest.mark.parametrize("case", GEMM_CASES, ids=[f"gemm{i}" for i in range(len(GEMM_CASES))])
def test_gemm(case: tuple) -> None:
    m, k, n, ta, tb, alpha, beta, c_shape = case
    a = rand(*((k, m) if ta else (m, k)))
    b = rand(*((n, k) if tb else (k, n)), seed=4)
    c = None if c_shape is None else rand(*c_shape, seed=5)
    expected = ref.gemm(a, b, c, alpha, beta, ta, tb)
    attrs = {"alpha": alpha, "beta": beta, "trans_a": ta, "trans_b": tb}
    lowered = run_op("gemm", [a, b] if c is None else [a, b, c], [m, n], attrs)
    assert "linalg.matmul" in lowered.ir_text
    assert ("linalg.transpose" in lowered.ir_text) == (ta or tb)
    check(lowered.outputs[0], expected)


# ----------------------------------------------------------------------------
# Elementwise.

BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
BROADCASTS = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)), ((2, 3, 4), (2, 1, 1))]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", BROADCASTS, ids=[f"{a}_{b}" for a, b in BROADCASTS])
def test_binary_broadcasting(name: str, shapes: tuple) -> None:
    a, b = rand(*shapes[0]), rand(*shapes[1], seed=6)
    if name == "div":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(np.float32)
    expected = BINARY[name](a.astype(np.float64), b.astype(np.float64))
    lowered = run_op(name, [a, b], expected.shape)
    assert "linalg.generic" in lowered.ir_text
    assert "reduction" not in lowered.ir_text
    check(lowered.outputs[0], expected)


def test_broadcast_maps_use_constant_zero_for_size_one_dims() -> None:
    lowered = run_op("add", [rand(2, 1, 4), rand(3, 1)], [2, 3, 4])
    assert "(d0, d1, d2) -> (d0, 0, d2)" in lowered.ir_text
    assert "(d0, d1, d2) -> (d1, 0)" in lowered.ir_text


UNARY: dict[str, tuple[dict[str, AttrValue], Callable[[np.ndarray], np.ndarray]]] = {
    "relu": ({}, lambda x: np.maximum(x, 0.0)),
    "sigmoid": ({}, ref.sigmoid),
    "tanh": ({}, np.tanh),
    "leaky_relu": ({"alpha": 0.1}, lambda x: ref.leaky_relu(x, 0.1)),
    "clip": ({"min": -0.5, "max": 0.75}, lambda x: np.clip(x, -0.5, 0.75)),
    "clip_no_min": ({"min": -np.inf, "max": 0.2}, lambda x: np.minimum(x, 0.2)),
    "clip_no_max": ({"min": 0.0, "max": np.inf}, lambda x: np.maximum(x, 0.0)),
    "clip_min_above_max": ({"min": 2.0, "max": 1.0}, lambda x: np.minimum(np.maximum(x, 2.0), 1.0)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name: str) -> None:
    attrs, fn = UNARY[name]
    x = rand(2, 3, 5) * 3
    lowered = run_op("clip" if name.startswith("clip") else name, [x], x.shape, attrs)
    check(lowered.outputs[0], fn(x.astype(np.float64)))


@pytest.mark.parametrize("name", ["relu", "clip"])
def test_relu_and_clip_propagate_nan(name: str) -> None:
    x = np.array([np.nan, -1.0, 2.0], np.float32)
    attrs: dict[str, AttrValue] = {"min": -0.5, "max": 0.5} if name == "clip" else {}
    out = run_op(name, [x], x.shape, attrs).outputs[0]
    assert np.isnan(out[0])
    assert not np.isnan(out[1:]).any()


def test_sigmoid_and_tanh_saturate_without_overflow() -> None:
    x = np.array([-100.0, -20.0, 0.0, 20.0, 100.0], np.float32)
    check(run_op("sigmoid", [x], x.shape).outputs[0], ref.sigmoid(x))
    check(run_op("tanh", [x], x.shape).outputs[0], np.tanh(x.astype(np.float64)))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
def test_batch_norm(shape: tuple[int, ...]) -> None:
    c = shape[1]
    x, scale, bias, mean = rand(*shape), rand(c, seed=7), rand(c, seed=8), rand(c, seed=9)
    var = np.abs(rand(c, seed=10)) + 0.1
    lowered = run_op("batch_norm", [x, scale, bias, mean, var], shape, {"epsilon": 1e-3})
    check(lowered.outputs[0], ref.batch_norm(x, scale, bias, mean, var, 1e-3))


# ----------------------------------------------------------------------------
# Pooling.

POOL_CASES = [
    # (x shape, kernel, strides, pads, dilations, ceil_mode)
    ((1, 2, 7, 8), [3, 3], [2, 2], [1, 0, 1, 2], [1, 1], False),
    ((1, 2, 6, 6), [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], True),
    ((2, 2, 8, 9), [3, 2], [2, 3], [1, 0, 1, 1], [1, 1], True),  # ceil_mode drops a last window
    ((1, 1, 5, 5), [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], True),
    ((1, 1, 7, 7), [3, 3], [3, 3], [1, 1, 1, 1], [1, 1], True),
    ((1, 2, 9, 10), [2, 3], [1, 2], [1, 1, 0, 2], [2, 2], False),
    ((1, 2, 8, 7), [2, 2], [2, 2], [1, 1, 1, 1], [2, 1], True),
    ((1, 3, 4, 4), [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], False),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"maxpool{i}" for i in range(len(POOL_CASES))])
def test_max_pool(case: tuple) -> None:
    shape, kernel, strides, pads, dilations, ceil_mode = case
    x = rand(*shape)
    expected = ref.pool2d(x, "max", kernel, strides, pads, dilations, ceil_mode)
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads, "dilations": dilations, "ceil_mode": ceil_mode}
    lowered = run_op("max_pool", [x], expected.shape, attrs)
    assert "linalg.pooling_nchw_max" in lowered.ir_text
    check(lowered.outputs[0], expected)


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"avgpool{i}" for i in range(len(POOL_CASES))])
def test_avg_pool(case: tuple, count_include_pad: bool) -> None:
    shape, kernel, strides, pads, dilations, ceil_mode = case
    x = rand(*shape)
    expected = ref.pool2d(x, "avg", kernel, strides, pads, dilations, ceil_mode, count_include_pad)
    attrs = {
        "kernel_shape": kernel,
        "strides": strides,
        "pads": pads,
        "dilations": dilations,
        "ceil_mode": ceil_mode,
        "count_include_pad": count_include_pad,
    }
    lowered = run_op("avg_pool", [x], expected.shape, attrs)
    assert "linalg.pooling_nchw_sum" in lowered.ir_text
    check(lowered.outputs[0], expected)


def test_global_avg_pool() -> None:
    x = rand(2, 3, 5, 4)
    lowered = run_op("global_avg_pool", [x], [2, 3, 1, 1])
    check(lowered.outputs[0], x.astype(np.float64).mean(axis=(2, 3), keepdims=True))


# ----------------------------------------------------------------------------
# Reductions.


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_softmax(axis: int) -> None:
    x = rand(3, 4, 5) * 10
    lowered = run_op("softmax", [x], x.shape, {"axis": axis})
    assert "reduction" in lowered.ir_text
    check(lowered.outputs[0], ref.softmax(x, axis))


def test_softmax_is_numerically_stable() -> None:
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1001.0]], np.float32)
    check(run_op("softmax", [x], x.shape, {"axis": 1}).outputs[0], ref.softmax(x, 1))


REDUCE_CASES = [([1], True), ([1], False), ([0, 2], True), ([0, 2], False), ([0, 1, 2], False), ([2], True)]


@pytest.mark.parametrize("axes,keepdims", REDUCE_CASES)
def test_reduce_mean(axes: list[int], keepdims: bool) -> None:
    x = rand(3, 4, 5)
    expected = ref.reduce_mean(x, axes, keepdims)
    lowered = run_op("reduce_mean", [x], expected.shape, {"axes": axes, "keepdims": keepdims})
    check(lowered.outputs[0], expected)


# ----------------------------------------------------------------------------
# Data movement.

RESHAPES = [
    ((2, 3, 4), (6, 4)),
    ((2, 3, 4), (2, 12)),
    ((24,), (2, 3, 4)),
    ((2, 3, 4), (4, 3, 2)),
    ((1, 6), (6,)),
    ((2, 3, 4), (24,)),
]


@pytest.mark.parametrize("shapes", RESHAPES, ids=[f"{a}->{b}" for a, b in RESHAPES])
def test_reshape(shapes: tuple) -> None:
    x = rand(*shapes[0])
    check(run_op("reshape", [x], shapes[1]).outputs[0], x.astype(np.float64).reshape(shapes[1]))


@pytest.mark.parametrize("axis", [0, 1, 2, 3])
def test_flatten(axis: int) -> None:
    x = rand(2, 3, 4)
    expected = ref.flatten(x, axis)
    check(run_op("flatten", [x], expected.shape, {"axis": axis}).outputs[0], expected)


@pytest.mark.parametrize("perm", [[1, 0, 2], [2, 0, 1], [0, 1, 2]])
def test_transpose(perm: list[int]) -> None:
    x = rand(2, 3, 4)
    expected = x.astype(np.float64).transpose(perm)
    lowered = run_op("transpose", [x], expected.shape, {"perm": perm})
    if perm != [0, 1, 2]:
        assert "linalg.transpose" in lowered.ir_text
    check(lowered.outputs[0], expected)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concat_chain_of_three(axis: int) -> None:
    """wpk.concat is binary; an ONNX Concat of three inputs imports as a chain of two."""
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, size in enumerate([1, 2, 3]):
        shapes[i][axis] = size
    xs = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    expected = np.concatenate([x.astype(np.float64) for x in xs], axis=axis)
    first_shape = list(shapes[0])
    first_shape[axis] += shapes[1][axis]

    def build(args: list[ir.Value]) -> list[ir.Value]:
        first = create_op("concat", args[:2], [tensor_type(first_shape)], _attrs({"axis": axis})).result
        return [create_op("concat", [first, args[2]], [tensor_type(expected.shape)], _attrs({"axis": axis})).result]

    lowered = lower_and_run(xs, [expected.shape], build)
    assert lowered.ir_text.count("tensor.insert_slice") == 4
    assert "tensor.concat" not in lowered.ir_text
    check(lowered.outputs[0], expected)


PAD_CASES = [[1, 2, 0, 2, 1, 3], [-1, 2, -2, 1, 0, 2], [0, 3, 1, 0, -1, -2], [0, 0, 0, 0, 0, 0]]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", PAD_CASES, ids=[str(p) for p in PAD_CASES])
def test_pad(mode: str, pads: list[int]) -> None:
    x = rand(3, 4, 5)
    expected = ref.pad(x, pads, mode, 1.5)
    lowered = run_op("pad", [x], expected.shape, {"pads": pads, "mode": mode, "value": 1.5})
    if any(p < 0 for p in pads):
        assert "tensor.extract_slice" in lowered.ir_text
    check(lowered.outputs[0], expected)


@pytest.mark.parametrize("mode", ["reflect", "wrap"])
def test_pad_wider_than_input(mode: str) -> None:
    x = rand(3, 4)
    pads = [5, 2, 4, 9]
    expected = ref.pad(x, pads, mode)
    check(run_op("pad", [x], expected.shape, {"pads": pads, "mode": mode, "value": 0.0}).outputs[0], expected)


# ----------------------------------------------------------------------------
# A small network and the pass itself.


def test_chain_of_ops_lowers_in_one_pass() -> None:
    x, w = rand(1, 3, 8, 8), rand(4, 3, 3, 3, seed=11)
    fc = rand(4 * 4 * 4, 10, seed=12)

    def build(args: list[ir.Value]) -> list[ir.Value]:
        conv = create_op(
            "conv2d",
            [args[0], args[1]],
            [tensor_type([1, 4, 8, 8])],
            _attrs({"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "groups": 1}),
        ).result
        relu = create_op("relu", [conv], [tensor_type([1, 4, 8, 8])]).result
        pool = create_op(
            "max_pool",
            [relu],
            [tensor_type([1, 4, 4, 4])],
            _attrs(
                {
                    "kernel_shape": [2, 2],
                    "strides": [2, 2],
                    "pads": [0, 0, 0, 0],
                    "dilations": [1, 1],
                    "ceil_mode": False,
                }
            ),
        ).result
        flat = create_op("flatten", [pool], [tensor_type([1, 64])], _attrs({"axis": 1})).result
        logits = create_op("matmul", [flat, args[2]], [tensor_type([1, 10])]).result
        return [create_op("softmax", [logits], [tensor_type([1, 10])], _attrs({"axis": 1})).result]

    lowered = lower_and_run([x, w, fc], [[1, 10]], build, use_pass_manager=False)
    conv = np.maximum(ref.conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], 1), 0)
    pooled = ref.pool2d(conv, "max", [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], False)
    check(lowered.outputs[0], ref.softmax(ref.flatten(pooled, 1) @ fc, 1))


def test_every_wpk_op_has_a_lowering() -> None:
    from woodpecker.dialect import op_names

    assert set(op_names()) == {cls.OPERATION_NAME for cls in LOWERINGS}


def test_every_step_has_a_scalar_lowering() -> None:
    """Each step kind of woodpecker.ops (the fused kernels' vocabulary) has a scalar builder."""
    from woodpecker.lowering.elementwise import STEP_LOWERINGS
    from woodpecker.ops.steps import STEP_KINDS

    assert set(STEP_KINDS) == set(STEP_LOWERINGS)


def _failing_module(loc_name: str, build: Builder, in_shape: Sequence[int]) -> Callable[[], None]:
    def run() -> None:
        with create_context(), ir.Location.name(loc_name):
            module = ir.Module.create()
            with ir.InsertionPoint(module.body):
                fn = func.FuncOp("main", ([tensor_type(in_shape)], [tensor_type([1])]))
                block = fn.add_entry_block()
                with ir.InsertionPoint(block):
                    func.ReturnOp(build(list(block.arguments)))
            lower_to_linalg(module.operation)

    return run


def test_wrong_result_shape_raises_compilation_error_naming_op_and_location() -> None:
    def build(args: list[ir.Value]) -> list[ir.Value]:
        return [create_op("matmul", [args[0], args[0]], [tensor_type([1])]).result]

    with pytest.raises(CompilationError, match=r"'wpk.matmul' at loc\(\"node_7\"\).*result shape"):
        _failing_module("node_7", build, [3, 3])()


def test_unknown_pad_mode_raises_compilation_error() -> None:
    def build(args: list[ir.Value]) -> list[ir.Value]:
        attrs = _attrs({"pads": [0, 0], "mode": "mirror", "value": 0.0})
        return [create_op("pad", [args[0]], [tensor_type([1])], attrs).result]

    with pytest.raises(CompilationError, match=r"'wpk.pad' at loc\(\"my_pad\"\).*mode 'mirror'"):
        _failing_module("my_pad", build, [1])()
