"""Graph optimization: each pass on small ONNX graphs compiled at O0, O1 and O2 (the kernels
that remain and the numerics against onnxruntime), constant folding of every op against the
float64 numpy reference, and the kernels of the test CNN at O2."""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy_reference as ref
import onnx
import pytest
from mlir import ir
from mlir.dialects import func
from mlir.passmanager import PassManager
from onnx import TensorProto, helper, numpy_helper

from woodpecker import compile as wpk_compile
from woodpecker.compiler import CompileOptions
from woodpecker.dialect import (
    create_context,
    create_op,
    python_attr,
    tensor_type,
)
from woodpecker.dialect.weights import WeightTable
from woodpecker.graph import GraphContext
from woodpecker.graph.cleanup import cleanup
from woodpecker.graph.fold_batchnorm import fold_batchnorm
from woodpecker.graph.fold_constants import fold_constants
from woodpecker.graph.fuse import fuse
from woodpecker.models import tiny_resnet
from woodpecker.ops.fused_layout import build
from woodpecker.ops.steps import Step
from woodpecker.schedule import CpuMachine, apply_schedules

ort = pytest.importorskip("onnxruntime")

RTOL, ATOL = 1e-4, 1e-5
DATA_OPS = ("wpk.weight", "wpk.constant")


# ----------------------------------------------------------------------------
# ONNX graphs.


@dataclass
class Graph:
    """A small ONNX graph: nodes, runtime inputs, outputs (name -> shape) and initializers."""

    nodes: list[onnx.NodeProto]
    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]
    inits: dict[str, np.ndarray] = field(default_factory=dict)

    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "g",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in self.inputs.items()],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in self.outputs.items()],
            [numpy_helper.from_array(_f32_if_float(a), n) for n, a in self.inits.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model, full_check=True)
        return model


def _f32_if_float(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return array.astype(np.float32) if array.dtype.kind == "f" else array


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _bn_params(prefix: str, c: int, seed: int) -> dict[str, np.ndarray]:
    rng = _rng(seed)
    return {
        f"{prefix}_s": rng.uniform(0.5, 1.5, c),
        f"{prefix}_b": rng.normal(0, 0.3, c),
        f"{prefix}_m": rng.normal(0, 0.3, c),
        f"{prefix}_v": rng.uniform(0.5, 1.5, c),
    }


def _bn(x: str, out: str, prefix: str) -> onnx.NodeProto:
    return helper.make_node("BatchNormalization", [x, *(f"{prefix}_{k}" for k in "sbmv")], [out], epsilon=1e-3)


def conv_bn_relu() -> Graph:
    rng = _rng(1)
    return Graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            _bn("c", "n", "bn"),
            helper.make_node("Relu", ["n"], ["y"]),
        ],
        {"x": (1, 3, 8, 8)},
        {"y": (1, 4, 8, 8)},
        {"w": rng.normal(0, 0.5, (4, 3, 3, 3)), "b": rng.normal(0, 0.1, 4), **_bn_params("bn", 4, 2)},
    )


def residual() -> Graph:
    rng = _rng(3)
    return Graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            _bn("c", "n", "bn"),
            helper.make_node("Add", ["x", "n"], ["a"]),
            helper.make_node("Relu", ["a"], ["y"]),
        ],
        {"x": (1, 4, 8, 8)},
        {"y": (1, 4, 8, 8)},
        {"w": rng.normal(0, 0.3, (4, 4, 3, 3)), **_bn_params("bn", 4, 4)},
    )


def depthwise_relu6() -> Graph:
    rng = _rng(5)
    return Graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], group=6, strides=[2, 2]),
            _bn("c", "n", "bn"),
            helper.make_node("Clip", ["n", "lo", "hi"], ["y"]),
        ],
        {"x": (1, 6, 9, 9)},
        {"y": (1, 6, 5, 5)},
        {"w": rng.normal(0, 2.0, (6, 1, 3, 3)), "lo": np.array(0.0), "hi": np.array(6.0), **_bn_params("bn", 6, 6)},
    )


def activations() -> Graph:
    rng = _rng(7)
    nodes = [helper.make_node("Conv", ["x", "w"], [f"c{i}"]) for i in range(4)]
    nodes += [
        helper.make_node("LeakyRelu", ["c0"], ["y0"], alpha=0.2),
        helper.make_node("Sigmoid", ["c1"], ["y1"]),
        helper.make_node("Tanh", ["c2"], ["y2"]),
        helper.make_node("Sigmoid", ["c3"], ["g3"]),
        helper.make_node("Mul", ["c3", "g3"], ["y3"]),
    ]
    return Graph(
        nodes, {"x": (1, 2, 5, 5)}, {f"y{i}": (1, 3, 5, 5) for i in range(4)}, {"w": rng.normal(0, 1, (3, 2, 1, 1))}
    )


def matmul_bias_relu() -> Graph:
    rng = _rng(8)
    return Graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["a"]),
            helper.make_node("Relu", ["a"], ["y"]),
            helper.make_node("MatMul", ["y", "w2"], ["m2"]),
            helper.make_node("Sigmoid", ["m2"], ["s2"]),
            helper.make_node("Mul", ["s2", "m2"], ["z"]),
        ],
        {"x": (3, 8)},
        {"z": (3, 5)},
        {"w": rng.normal(0, 0.5, (8, 6)), "b": rng.normal(0, 0.5, 6), "w2": rng.normal(0, 0.5, (6, 5))},
    )


def gemm_bn() -> Graph:
    rng = _rng(9)
    return Graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1, alpha=0.5, beta=2.0), _bn("g", "y", "bn")],
        {"x": (2, 8)},
        {"y": (2, 6)},
        {"w": rng.normal(0, 0.5, (6, 8)), "b": rng.normal(0, 0.5, 6), **_bn_params("bn", 6, 10)},
    )


def matmul_bn() -> Graph:
    rng = _rng(11)
    return Graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), _bn("m", "y", "bn")],
        {"x": (4, 8)},
        {"y": (4, 6)},
        {"w": rng.normal(0, 0.5, (8, 6)), **_bn_params("bn", 6, 12)},
    )


def bn_after_relu() -> Graph:
    return Graph(
        [helper.make_node("Relu", ["x"], ["r"]), _bn("r", "y", "bn")],
        {"x": (2, 3, 4, 4)},
        {"y": (2, 3, 4, 4)},
        _bn_params("bn", 3, 13),
    )


def pads() -> Graph:
    rng = _rng(14)
    pad = [0, 0, 1, 2, 0, 0, 2, 1]
    return Graph(
        [
            helper.make_node("Pad", ["x", "p"], ["px"]),
            helper.make_node("Conv", ["px", "w"], ["y0"]),
            helper.make_node("Pad", ["x", "p1"], ["pa"]),
            helper.make_node("AveragePool", ["pa"], ["y1"], kernel_shape=[3, 3], strides=[2, 2]),
            helper.make_node("Pad", ["x", "p1", "neg_inf"], ["pm"]),
            helper.make_node("MaxPool", ["pm"], ["y2"], kernel_shape=[2, 2], strides=[2, 2]),
        ],
        {"x": (1, 2, 6, 6)},
        {"y0": (1, 3, 7, 7), "y1": (1, 2, 3, 3), "y2": (1, 2, 4, 4)},
        {
            "w": rng.normal(0, 1, (3, 2, 3, 3)),
            "p": np.array(pad, dtype=np.int64),
            "p1": np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64),
            "neg_inf": np.array(-np.inf),
        },
    )


def folded_weights() -> Graph:
    rng = _rng(15)
    return Graph(
        [
            helper.make_node("Sigmoid", ["w1"], ["s"]),
            helper.make_node("Mul", ["w2", "s"], ["w"]),
            helper.make_node("MatMul", ["x", "w"], ["y"]),
        ],
        {"x": (2, 4)},
        {"y": (2, 3)},
        {"w1": rng.normal(0, 1, (4, 3)), "w2": rng.normal(0, 1, (4, 3))},
    )


def chain() -> Graph:
    rng = _rng(16)
    return Graph(
        [
            helper.make_node("Add", ["x", "x2"], ["a"]),
            helper.make_node("Mul", ["a", "c"], ["m"]),
            helper.make_node("Tanh", ["m"], ["t"]),
            helper.make_node("Sub", ["d", "t"], ["s"]),
            helper.make_node("Div", ["s", "e"], ["q"]),
            helper.make_node("Relu", ["q"], ["y"]),
        ],
        {"x": (2, 3, 4), "x2": (2, 3, 4)},
        {"y": (2, 3, 4)},
        {"c": rng.normal(0, 1, 4), "d": rng.normal(0, 1, (3, 1)), "e": rng.uniform(0.5, 2, 4)},
    )


@dataclass(frozen=True)
class Case:
    """A graph and the kernels (sorted op names) expected after graph optimization per level."""

    build: Callable[[], Graph]
    kernels: dict[int, list[str]]


CASES: dict[str, Case] = {
    "conv_bn_relu": Case(
        conv_bn_relu, {0: ["batch_norm", "conv2d", "relu"], 1: ["conv2d", "relu"], 2: ["fused_conv2d"]}
    ),
    "residual": Case(residual, {1: ["add", "conv2d", "relu"], 2: ["fused_conv2d"]}),
    "depthwise_relu6": Case(depthwise_relu6, {1: ["clip", "conv2d"], 2: ["fused_conv2d"]}),
    "activations": Case(activations, {2: ["fused_conv2d"] * 4}),
    "matmul_bias_relu": Case(matmul_bias_relu, {1: ["add", "matmul", "matmul", "mul", "relu", "sigmoid"],
                                                2: ["fused_matmul", "fused_matmul"]}),
    "gemm_bn": Case(gemm_bn, {0: ["batch_norm", "gemm"], 1: ["gemm"], 2: ["gemm"]}),
    "matmul_bn": Case(matmul_bn, {0: ["batch_norm", "matmul"], 1: ["gemm"], 2: ["gemm"]}),
    "bn_after_relu": Case(bn_after_relu, {1: ["elementwise", "relu"], 2: ["elementwise"]}),
    "pads": Case(pads, {1: ["avg_pool", "conv2d", "max_pool", "pad", "pad", "pad"],
                        2: ["avg_pool", "conv2d", "max_pool"]}),
    "folded_weights": Case(folded_weights, {0: ["matmul", "mul", "sigmoid"], 1: ["matmul"], 2: ["matmul"]}),
    "chain": Case(chain, {1: ["add", "div", "mul", "relu", "sub", "tanh"], 2: ["elementwise", "elementwise"]}),
}  # fmt: skip


@dataclass
class Compiled:
    """What one compile produced: outputs on the feeds, the kernels after graph optimization, the IR."""

    outputs: list[np.ndarray]
    kernels: list[str]
    ir_text: str
    ops_before: int


def _compile_and_run(
    model: onnx.ModelProto, opt_level: int, feeds: dict[str, np.ndarray], layout: str = "nchw"
) -> Compiled:
    """Compiled in NCHW unless asked: these tests are about folding and fusion."""
    seen: dict[str, str] = {}

    def on_stage(stage: str, module: ir.Module) -> None:
        if stage == "optimize":
            seen["ir"] = str(module)

    options = CompileOptions(opt_level=opt_level, on_stage=on_stage, layout=layout)
    compiled = wpk_compile(model, options=options)
    kernels = sorted(
        line.split('"wpk.', 1)[1].split('"', 1)[0]
        for line in seen["ir"].splitlines()
        if '"wpk.' in line and not any(f'"{d}"' in line for d in DATA_OPS)
    )
    assert len(kernels) == compiled.stats.num_graph_ops
    return Compiled(compiled.run(None, feeds), kernels, seen["ir"], compiled.stats.num_ops_before)


def _feeds(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = _rng(seed + 100)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in graph.inputs.items()}


@pytest.mark.parametrize("opt_level", [0, 1, 2], ids=["O0", "O1", "O2"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_pattern_kernels_and_numerics(name: str, opt_level: int) -> None:
    case = CASES[name]
    graph = case.build()
    model = graph.model()
    feeds = _feeds(graph)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    result = _compile_and_run(model, opt_level, feeds)
    for out_name, got, want in zip(graph.outputs, result.outputs, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} O{opt_level} output {out_name}")
    if opt_level in case.kernels:
        assert result.kernels == sorted(case.kernels[opt_level]), result.ir_text
    if opt_level == 0:
        assert result.ops_before == len(result.kernels)


def test_fused_epilogues_are_in_the_ir() -> None:
    """The epilogue of each fused conv is visible: the activation and its parameters."""
    graph = activations()
    result = _compile_and_run(graph.model(), 2, _feeds(graph))
    text = result.ir_text
    assert 'epilogue = ["leaky_relu"], epilogue_params = array<f32: 2.000000e-01>' in text
    for step in ("sigmoid", "tanh", "silu"):
        assert f'epilogue = ["{step}"]' in text
    mobile = _compile_and_run(depthwise_relu6().model(), 2, _feeds(depthwise_relu6()))
    assert 'epilogue = ["clip"], epilogue_params = array<f32: 0.000000e+00, 6.000000e+00>' in mobile.ir_text
    assert "groups = 6 : i64" in mobile.ir_text


# ----------------------------------------------------------------------------
# The test CNN: ops before and kernels after.


def test_tiny_resnet_kernels_at_o2() -> None:
    model = tiny_resnet(batch=1, opset=17)
    rng = _rng(0)
    feeds = {"input": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)}
    result = _compile_and_run(model, 2, feeds)
    assert result.ops_before == 25  # Conv, BatchNormalization, Relu, ... one wpk op per ONNX node
    counts = collections.Counter(result.kernels)
    # Every conv + batch_norm (+ residual add) + relu is one kernel; the projection conv of the
    # strided block (conv + batch_norm, read by the residual add) is a plain conv2d.
    assert counts == {
        "fused_conv2d": 5,
        "conv2d": 1,
        "max_pool": 1,
        "avg_pool": 1,
        "global_avg_pool": 1,
        "flatten": 1,
        "gemm": 1,
        "softmax": 1,
    }
    assert result.ir_text.count('epilogue = ["relu"]') == 3
    assert result.ir_text.count('epilogue = ["add", "relu"]') == 2
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for got, want in zip(result.outputs, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_tiny_resnet_kernels_at_o2_in_the_default_blocked_layout() -> None:
    """The default layout at O2: the convolutions whose output channels the blocks (the host's
    vector width) pad by at most half are blocked convolutions (wpk-convert-layout's rule), the
    others stay NCHW; every one keeps its fused epilogue, with reorders where the regions meet."""
    from woodpecker.runtime.cpu.host import vector_lanes

    model = tiny_resnet(batch=1, opset=17)
    feeds = {"input": _rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)}
    result = _compile_and_run(model, 2, feeds, layout="auto")
    counts = collections.Counter(result.kernels)
    convs = counts["blocked_conv2d"] + counts["fused_conv2d"] + counts["conv2d"]
    assert convs == 6 and counts["blocked_conv2d"] >= 3, counts
    assert counts["to_blocked"] >= 1 and counts["from_blocked"] >= 1, counts
    assert result.ir_text.count('epilogue = ["relu"]') == 3
    assert result.ir_text.count('epilogue = ["add", "relu"]') == 2
    if vector_lanes() == 16:
        assert counts == {"blocked_conv2d": 3, "fused_conv2d": 3, "avg_pool": 1, "flatten": 1, "from_blocked": 1,
                          "gemm": 1, "global_avg_pool": 1, "max_pool": 1, "softmax": 1, "to_blocked": 1}
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for got, want in zip(result.outputs, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------
# wpk-fold-constants on every op, against the float64 numpy reference.


@dataclass(frozen=True)
class FoldCase:
    op: str
    inputs: Sequence[np.ndarray]
    out_shape: Sequence[int]
    attrs: dict[str, object]
    expected: Callable[..., np.ndarray]


def _a(*shape: int, seed: int = 0, low: float = -1.0) -> np.ndarray:
    return _rng(seed).uniform(low, 1.0, shape).astype(np.float32)


_attr = python_attr


_CONV = {"strides": [2, 1], "pads": [1, 0, 2, 1], "dilations": [1, 2], "groups": 1}
_POOL = {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 1, 1, 0], "dilations": [1, 1]}

FOLD_CASES: dict[str, FoldCase] = {
    "conv2d": FoldCase(
        "conv2d", [_a(1, 4, 7, 6), _a(6, 4, 3, 2, seed=1), _a(6, seed=2)], [1, 6, 4, 5], _CONV,
        lambda x, w, b: ref.conv2d(x, w, b, [2, 1], [1, 0, 2, 1], [1, 2], 1),
    ),
    "conv2d_depthwise": FoldCase(
        "conv2d", [_a(1, 4, 5, 5), _a(4, 1, 3, 3, seed=1)], [1, 4, 5, 5],
        {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "groups": 4},
        lambda x, w: ref.conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], 4),
    ),
    "max_pool_ceil": FoldCase(
        "max_pool", [_a(1, 2, 7, 6)], [1, 2, 4, 4], {**_POOL, "ceil_mode": True},
        lambda x: ref.pool2d(x, "max", [3, 2], [2, 2], [1, 1, 1, 0], [1, 1], True),
    ),
    "avg_pool_count_pad": FoldCase(
        "avg_pool", [_a(1, 2, 7, 6)], [1, 2, 4, 3], {**_POOL, "ceil_mode": False, "count_include_pad": True},
        lambda x: ref.pool2d(x, "avg", [3, 2], [2, 2], [1, 1, 1, 0], [1, 1], False, True),
    ),
    "avg_pool_ceil": FoldCase(
        "avg_pool", [_a(1, 2, 7, 6)], [1, 2, 4, 4], {**_POOL, "ceil_mode": True, "count_include_pad": False},
        lambda x: ref.pool2d(x, "avg", [3, 2], [2, 2], [1, 1, 1, 0], [1, 1], True, False),
    ),
    "gemm": FoldCase(
        "gemm", [_a(4, 3), _a(5, 4, seed=1), _a(5, seed=2)], [3, 5],
        {"alpha": 0.5, "beta": 2.0, "trans_a": True, "trans_b": True},
        lambda a, b, c: ref.gemm(a, b, c, 0.5, 2.0, True, True),
    ),
    "matmul_batched": FoldCase("matmul", [_a(2, 1, 3, 4), _a(3, 4, 5, seed=1)], [2, 3, 3, 5], {}, np.matmul),
    "batch_norm": FoldCase(
        "batch_norm", [_a(2, 3, 4), _a(3, seed=1), _a(3, seed=2), _a(3, seed=3), _a(3, seed=4, low=0.1)], [2, 3, 4],
        {"epsilon": 1e-3}, lambda x, s, b, m, v: ref.batch_norm(x, s, b, m, v, 1e-3),
    ),
    "softmax": FoldCase("softmax", [_a(3, 4, 5)], [3, 4, 5], {"axis": 1}, lambda x: ref.softmax(x, 1)),
    "reduce_mean": FoldCase(
        "reduce_mean", [_a(3, 4, 5)], [3, 1, 1], {"axes": [1, 2], "keepdims": True},
        lambda x: ref.reduce_mean(x, [1, 2], True),
    ),
    "global_avg_pool": FoldCase(
        "global_avg_pool", [_a(2, 3, 4, 5)], [2, 3, 1, 1], {}, lambda x: x.mean(axis=(2, 3), keepdims=True)
    ),
    "flatten": FoldCase("flatten", [_a(2, 3, 4)], [6, 4], {"axis": 2}, lambda x: ref.flatten(x, 2)),
    "transpose": FoldCase("transpose", [_a(2, 3, 4)], [4, 2, 3], {"perm": [2, 0, 1]}, lambda x: x.transpose(2, 0, 1)),
    "concat": FoldCase(
        "concat", [_a(2, 3), _a(2, 4, seed=1)], [2, 7], {"axis": 1}, lambda a, b: np.concatenate([a, b], 1)
    ),
    "leaky_relu": FoldCase("leaky_relu", [_a(3, 4)], [3, 4], {"alpha": 0.3}, lambda x: ref.leaky_relu(x, 0.3)),
    "clip": FoldCase("clip", [_a(3, 4)], [3, 4], {"min": -0.25, "max": 0.5}, lambda x: np.clip(x, -0.25, 0.5)),
    "sigmoid": FoldCase("sigmoid", [_a(3, 4)], [3, 4], {}, ref.sigmoid),
    "div_broadcast": FoldCase("div", [_a(3, 4), _a(4, seed=1, low=0.5)], [3, 4], {}, np.divide),
    **{
        f"pad_{mode}": FoldCase(
            "pad", [_a(3, 4)], [6, 5], {"pads": [2, -1, 1, 2], "mode": mode, "value": 0.5},
            lambda x, mode=mode: ref.pad(x, [2, -1, 1, 2], mode, 0.5),
        )
        for mode in ("constant", "reflect", "edge", "wrap")
    },
}  # fmt: skip


def _fold(
    op: str, inputs: Sequence[np.ndarray], out_shape: Sequence[int], attrs: dict[str, ir.Attribute]
) -> np.ndarray:
    """Builds `@main() -> op(weights...)`, runs wpk-fold-constants and returns the folded array."""
    with create_context(), ir.Location.unknown():
        module = ir.Module.create()
        graph = GraphContext(WeightTable())
        with ir.InsertionPoint(module.body):
            fn = func.FuncOp("main", ([], [tensor_type(out_shape)]))
            with ir.InsertionPoint(fn.add_entry_block()):
                weights = [graph.constant(a, f"in{i}") for i, a in enumerate(inputs)]
                result = create_op(op, weights, [tensor_type(out_shape)], attrs).result
                func.ReturnOp([result])
        fold_constants(module.operation, graph)
        ops = list(fn.regions[0].blocks[0].operations)
        assert [o.operation.name for o in ops] in (["wpk.weight", "func.return"], ["wpk.constant", "func.return"])
        assert len(graph.used_resources(module.operation)) <= 1
        return graph.weights.value_of(ops[0])


@pytest.mark.parametrize("name", sorted(FOLD_CASES))
def test_fold_constants_matches_reference(name: str) -> None:
    case = FOLD_CASES[name]
    with create_context(), ir.Location.unknown():
        attrs = {k: _attr(v) for k, v in case.attrs.items()}
        got = _fold(case.op, case.inputs, case.out_shape, attrs)
    expected = case.expected(*[np.asarray(a, dtype=np.float64) for a in case.inputs])
    assert got.dtype == np.float32 and list(got.shape) == list(case.out_shape)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_fold_constants_evaluates_fused_kernels() -> None:
    """A fused conv on weights folds to conv + bias, then its epilogue steps in order."""
    x, w, b, r = _a(1, 2, 5, 5), _a(3, 2, 3, 3, seed=1), _a(3, seed=2), _a(1, 3, 5, 5, seed=3)
    steps = [Step("add"), Step("clip", (-0.5, 0.75)), Step("silu")]
    with create_context(), ir.Location.unknown():
        module = ir.Module.create()
        graph = GraphContext(WeightTable())
        with ir.InsertionPoint(module.body):
            fn = func.FuncOp("main", ([], [tensor_type([1, 3, 5, 5])]))
            with ir.InsertionPoint(fn.add_entry_block()):
                xw, ww, bw, rw = (graph.constant(a, n) for a, n in ((x, "x"), (w, "w"), (b, "b"), (r, "r")))
                attrs = {k: _attr(v) for k, v in {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1],
                                                   "groups": 1}.items()}  # fmt: skip
                op = build("wpk.fused_conv2d", {"input": xw, "filter": ww, "bias": bw}, [rw], steps,
                           tensor_type([1, 3, 5, 5]), attrs)  # fmt: skip
                func.ReturnOp([op.result])
        fold_constants(module.operation, graph)
        folded = graph.weights.value_of(next(iter(fn.regions[0].blocks[0].operations)))
    v = np.clip(ref.conv2d(x, w, b, [1, 1], [1, 1, 1, 1], [1, 1], 1) + r, -0.5, 0.75)
    np.testing.assert_allclose(folded, v * ref.sigmoid(v), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------
# The passes as Python functions on IR text (the transformations wpk-opt runs).


def _run(text: str, *passes: Callable[..., None]) -> tuple[str, GraphContext]:
    with create_context():
        module = ir.Module.parse(text)
        graph = GraphContext(WeightTable.from_module(module))
        for p in passes:
            if p in (fold_constants, fold_batchnorm):
                p(module.operation, graph)
            else:
                p(module.operation)
        module.operation.verify()
        return str(module), graph


_BN_ON_ARG = """
func.func @main(%x: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %s = "wpk.weight"() {value = dense_resource<s> : tensor<2xf32>} : () -> tensor<2xf32>
  %y = "wpk.batch_norm"(%x, %s, %s, %s, %s) {epsilon = 0.5 : f32}
      : (tensor<1x2x3x3xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x3x3xf32>
  return %y : tensor<1x2x3x3xf32>
}
{-# dialect_resources: { builtin: { s: "0x040000000000803F00000040" } } #-}
"""


def test_fold_batchnorm_scale_shift_values() -> None:
    """gamma = beta = mean = var = [1, 2], eps 0.5: s = gamma / sqrt(var + eps), t = beta - mean * s."""
    text, graph = _run(_BN_ON_ARG, fold_batchnorm)
    assert '"wpk.elementwise"' in text and '"wpk.batch_norm"' not in text
    p = np.array([1.0, 2.0])
    s = p / np.sqrt(p + 0.5)
    t = p - p * s
    arrays = {k: v for k, v in graph.weights.arrays.items() if k != "s"}
    scale = next(v for k, v in arrays.items() if "scale" in k)
    shift = next(v for k, v in arrays.items() if "shift" in k)
    np.testing.assert_allclose(scale, s.reshape(2, 1, 1).astype(np.float32), rtol=1e-7)
    np.testing.assert_allclose(shift, t.reshape(2, 1, 1).astype(np.float32), rtol=1e-6, atol=1e-7)


def test_passes_leave_no_dead_ops() -> None:
    text, _ = _run(_BN_ON_ARG, fold_batchnorm, fuse, cleanup)
    assert "dense_resource<s>" not in text  # the old parameters were erased


def test_fuse_is_idempotent() -> None:
    graph = chain()
    seen: dict[str, str] = {}
    wpk_compile(graph.model(), options=CompileOptions(on_stage=lambda s, m: seen.setdefault(s, str(m))))
    once = seen["optimize"]
    twice, _ = _run(once, fuse, cleanup)
    with create_context():
        assert str(ir.Module.parse(once)) == twice


def test_compile_rejects_bad_opt_level() -> None:
    from woodpecker.errors import CompilationError

    with pytest.raises(CompilationError, match="opt_level"):
        wpk_compile(chain().model(), opt_level=3)


def test_silu_and_sigmoid_are_not_confused() -> None:
    """x * sigmoid(y) with y != x is not silu: it stays a chain over two inputs."""
    graph = Graph(
        [helper.make_node("Sigmoid", ["y"], ["s"]), helper.make_node("Mul", ["x", "s"], ["z"])],
        {"x": (2, 3), "y": (2, 3)},
        {"z": (2, 3)},
    )
    feeds = _feeds(graph)
    result = _compile_and_run(graph.model(), 2, feeds)
    assert "silu" not in result.ir_text
    np.testing.assert_allclose(result.outputs[0], feeds["x"] / (1 + np.exp(-feeds["y"])), rtol=RTOL, atol=ATOL)
    assert result.kernels == ["elementwise"]


# ----------------------------------------------------------------------------
# The fused kernel in the CPU backend: one loop nest.


class _Stop(Exception):
    pass


def test_fused_conv_and_epilogue_share_one_parallel_loop_nest() -> None:
    """conv + batch_norm + residual add + relu at O2 lowers to a conv and ONE epilogue generic;
    the parallel conv schedule puts both (and the accumulator fill) in the same scf.forall,
    so no separate pass over memory remains outside it."""
    graph = residual()
    graph.inputs = {"x": (1, 4, 32, 32)}
    graph.outputs = {"y": (1, 4, 32, 32)}
    seen: dict[str, str] = {}

    def on_stage(stage: str, module: ir.Module) -> None:
        if stage != "linalg":
            return
        generics = [op for op in module.body.operations[0].regions[0].blocks[0].operations if "linalg." in op.name]
        seen["linalg"] = " ".join(op.name for op in generics)
        apply_schedules(module, {"conv": {"parallel": True}}, CpuMachine(threads=2))
        PassManager.parse("builtin.module(canonicalize,cse)", context=module.context).run(module.operation)
        body = module.body.operations[0].regions[0].blocks[0].operations
        seen["top"] = " ".join(op.name for op in body)
        forall = next(op for op in body if op.name == "scf.forall")
        seen["forall"] = str(forall)
        raise _Stop  # the rest of the CPU backend is not under test here

    with pytest.raises(_Stop):
        wpk_compile(graph.model(), options=CompileOptions(opt_level=2, on_stage=on_stage))
    assert seen["linalg"] == "linalg.fill linalg.conv_2d_nchw_fchw linalg.generic", seen["linalg"]
    assert "linalg." not in seen["top"] and seen["top"].count("scf.forall") == 1, seen["top"]
    inside = seen["forall"]
    # The fill (zeros written), the conv (FMAs) and the epilogue (ReLU), tile by tile.
    assert "vector.transfer_write %cst" in inside and "vector.fma" in inside and "arith.maximumf" in inside
