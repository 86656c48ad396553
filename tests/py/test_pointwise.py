"""The elementwise steps of ops/pointwise.py end to end: erf's accuracy over a wide range, Pow with
a constant exponent, run-time Clip bounds, the variadic ops, and the fusion of the new steps
into conv/matmul epilogues and elementwise chains (the GELU of a transformer MLP).

References: float64 numpy (math.erf elementwise for erf) or ONNX Runtime; rtol 1e-4, atol 1e-5
(erf: rtol 1e-5 against float64, the bound asked of it).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker import CompileOptions
from woodpecker.ops.pointwise import erf

RTOL, ATOL = 1e-4, 1e-5


def model_of(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int]],
    outputs: dict[str, list[int]],
    initializers: dict[str, np.ndarray] | None = None,
    opset: int = 20,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        [numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    return model


def _options(opt_level: int) -> CompileOptions:
    return CompileOptions(opt_level=opt_level, libraries="none", use_tuning_records=False)


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], opt_level: int = 2) -> tuple[list[np.ndarray], object]:
    compiled = woodpecker.compile(model, options=_options(opt_level))
    return compiled.run(None, feeds), compiled


def _close(got: np.ndarray, expected: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> None:
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------
# erf.


@pytest.mark.parametrize("opt_level", [0, 2], ids=["O0", "O2"])
def test_erf_matches_float64_over_a_wide_range(opt_level: int) -> None:
    """Compiled (vectorized) erf against math.erf in float64: rtol 1e-5, from 1e-30 to 1e4,
    both signs, zero, the infinities and NaN."""
    magnitudes = np.concatenate([np.geomspace(1e-30, 1e4, 4000), np.linspace(0, 6, 4000)])
    x = np.concatenate([magnitudes, -magnitudes, [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(np.float32)
    model = model_of([helper.make_node("Erf", ["x"], ["y"])], {"x": [x.size]}, {"y": [x.size]})
    (got,), _ = run(model, {"x": x}, opt_level)
    expected = erf(x.astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0.0, equal_nan=True)


def test_numpy_erf_is_math_erf() -> None:
    x = np.array([-3.0, -0.5, 0.0, 1e-8, 0.7, 2.5, np.nan])
    assert np.allclose(erf(x), [math.erf(v) for v in x], rtol=0, atol=0, equal_nan=True)
    assert erf(np.zeros((0, 3))).shape == (0, 3)


# ----------------------------------------------------------------------------
# Import rewrites.


@pytest.mark.parametrize(
    ("exponent", "wpk_op"),
    [(2.0, "wpk.mul"), (3.0, "wpk.mul"), (0.5, "wpk.sqrt"), (-1.0, "wpk.reciprocal"), (1.7, "wpk.pow")],
)
def test_pow_with_a_constant_exponent(exponent: float, wpk_op: str) -> None:
    from woodpecker.importer import import_onnx

    model = model_of(
        [helper.make_node("Pow", ["x", "e"], ["y"])],
        {"x": [2, 5]},
        {"y": [2, 5]},
        {"e": np.asarray(exponent, dtype=np.float32)},
    )
    module = import_onnx(model)
    names = [op.operation.name for op in module.body.operations[0].regions[0].blocks[0].operations]
    assert wpk_op in names and ("wpk.pow" in names) == (wpk_op == "wpk.pow")
    x = np.random.default_rng(0).uniform(0.1, 3.0, (2, 5)).astype(np.float32)
    (got,), _ = run(model, {"x": x}, 0)
    _close(got, np.power(x.astype(np.float64), exponent).astype(np.float32))


def test_pow_broadcasts_a_run_time_exponent() -> None:
    model = model_of([helper.make_node("Pow", ["x", "e"], ["y"])], {"x": [3, 4], "e": [4]}, {"y": [3, 4]})
    rng = np.random.default_rng(1)
    x, e = rng.uniform(0.5, 2, (3, 4)).astype(np.float32), rng.uniform(-2, 2, 4).astype(np.float32)
    for level in (0, 2):
        (got,), _ = run(model, {"x": x, "e": e}, level)
        _close(got, np.power(x.astype(np.float64), e).astype(np.float32))


@pytest.mark.parametrize("bounds", [("lo", "hi"), ("lo", ""), ("", "hi")])
def test_clip_with_run_time_bounds(bounds: tuple[str, str]) -> None:
    inputs = {"x": [4, 6]} | {name: [] for name in bounds if name}
    model = model_of([helper.make_node("Clip", ["x", *bounds], ["y"])], inputs, {"y": [4, 6]}, opset=13)
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32) * 3
    feeds = {"x": x, "lo": np.float32(-0.5), "hi": np.float32(1.25)}
    feeds = {k: np.asarray(v) for k, v in feeds.items() if k in inputs}
    lo = -np.inf if not bounds[0] else -0.5
    hi = np.inf if not bounds[1] else 1.25
    for level in (0, 2):
        (got,), compiled = run(model, feeds, level)
        _close(got, np.minimum(np.maximum(x, lo), hi))
    assert compiled.stats.num_kernels == 1


def test_variadic_ops_broadcast_and_chain() -> None:
    shapes = {"a": [2, 1, 4], "b": [3, 1], "c": [4]}
    rng = np.random.default_rng(3)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    nodes = [helper.make_node(op, ["a", "b", "c"], [op.lower()]) for op in ("Max", "Min", "Sum", "Mean")]
    model = model_of(nodes, shapes, {op.lower(): [2, 3, 4] for op in ("Max", "Min", "Sum", "Mean")})
    a, b, c = (feeds[n].astype(np.float64) for n in "abc")
    expected = [np.maximum(np.maximum(a, b), c), np.minimum(np.minimum(a, b), c), a + b + c, (a + b + c) / 3]
    for level in (0, 2):
        got, _ = run(model, feeds, level)
        for g, e in zip(got, expected, strict=True):
            _close(g, e.astype(np.float32))


def test_mod_float_fmod_and_floor_mod() -> None:
    nodes = [
        helper.make_node("Mod", ["a", "b"], ["f"], fmod=1),
        helper.make_node("Mod", ["a", "b"], ["p"], fmod=0),
    ]
    model = model_of(nodes, {"a": [8], "b": [8]}, {"f": [8], "p": [8]}, opset=28)
    a = np.array([5.5, -5.5, 5.5, -5.5, 0.0, 3.0, -3.0, 7.25], dtype=np.float32)
    b = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.0, 3.0, -0.5], dtype=np.float32)
    for level in (0, 2):
        (f, p), _ = run(model, {"a": a, "b": b}, level)
        _close(f, np.fmod(a, b))
        _close(p, np.mod(a, b))


def test_gelu_unknown_approximation_is_one_error() -> None:
    from woodpecker.errors import UnsupportedOperatorError

    model = model_of([helper.make_node("Gelu", ["x"], ["y"], approximate="none")], {"x": [3]}, {"y": [3]})
    model.graph.node[0].attribute[0].s = b"sigmoid"
    with pytest.raises(UnsupportedOperatorError, match="approximate 'sigmoid' is not supported"):
        woodpecker.compile(model)


# ----------------------------------------------------------------------------
# Fusion (wpk-fuse treats every step alike).


def _gelu_erf_nodes(x: str, y: str) -> list[onnx.NodeProto]:
    """x * 0.5 * (1 + erf(x / sqrt 2)), as exporters write GELU."""
    return [
        helper.make_node("Div", [x, "sqrt2"], ["g_div"]),
        helper.make_node("Erf", ["g_div"], ["g_erf"]),
        helper.make_node("Add", ["g_erf", "one"], ["g_add"]),
        helper.make_node("Mul", [x, "g_add"], ["g_mul"]),
        helper.make_node("Mul", ["g_mul", "half"], [y]),
    ]


GELU_CONSTANTS = {
    "sqrt2": np.asarray(math.sqrt(2.0), dtype=np.float32),
    "one": np.asarray(1.0, dtype=np.float32),
    "half": np.asarray(0.5, dtype=np.float32),
}


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def test_matmul_bias_erf_gelu_fuses_into_one_matmul() -> None:
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((32, 48)) * 0.2).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "bias"], ["h"]),
        *_gelu_erf_nodes("h", "y"),
    ]
    model = model_of(nodes, {"x": [8, 32]}, {"y": [8, 48]}, {"w": w, "bias": bias, **GELU_CONSTANTS})
    x = rng.standard_normal((8, 32)).astype(np.float32)
    expected = _gelu(x.astype(np.float64) @ w + bias).astype(np.float32)
    for level in (0, 2):
        (got,), compiled = run(model, {"x": x}, level)
        _close(got, expected)
    # O2: wpk-fuse recognizes the GELU as one step, so matmul, bias and GELU are one fused_matmul.
    assert compiled.stats.num_kernels == 1


@pytest.mark.parametrize("activation", ["Gelu", "Mish", "Softplus", "Elu", "Selu", "Celu", "Erf", "Sqrt"])
def test_conv_new_activation_is_one_kernel(activation: str) -> None:
    """A conv followed by a new step becomes one fused_conv2d at O2, and generated (libraries
    none) and library-competing (all) compiles agree with the float64 reference."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Abs", ["c"], ["a"]) if activation == "Sqrt" else helper.make_node("Identity", ["c"], ["a"]),
        helper.make_node(activation, ["a"], ["y"]),
    ]
    model = model_of(nodes, {"x": [1, 4, 10, 10]}, {"y": [1, 8, 10, 10]}, {"w": w})
    x = rng.standard_normal((1, 4, 10, 10)).astype(np.float32)
    ort = pytest.importorskip("onnxruntime")
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[
        0
    ]
    for libraries in ("none", "all"):
        options = CompileOptions(opt_level=2, libraries=libraries, select="heuristic", use_tuning_records=False)
        compiled = woodpecker.compile(model, options=options)
        (got,) = compiled.run(None, {"x": x})
        _close(got, expected)
        assert compiled.stats.num_kernels == 1


def test_new_steps_compile_for_cuda() -> None:
    """A conv followed by a chain of the new steps (unary, parametric, and binary with a side
    operand) compiles for CUDA (no GPU needed) and its kernels, emulated on the CPU, agree with
    ONNX Runtime."""
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(6)
    w = (rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float32)
    slope = rng.uniform(0.1, 0.5, (8, 1, 1)).astype(np.float32)
    exponent = np.asarray(1.5, dtype=np.float32)
    chain = ["Gelu", "Mish", "Softplus", "Elu", "Selu", "Celu", "Erf", "Abs", "Sqrt", "Sign", "Round", "Floor"]
    chain += ["Softsign", "Sin", "Cos", "Exp", "Log", "Neg", "Reciprocal", "ThresholdedRelu"]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    for i, op in enumerate(chain):
        nodes.append(helper.make_node(op, [f"c{i}"], [f"c{i + 1}"]))
    last = f"c{len(chain)}"
    nodes += [
        helper.make_node("PRelu", [last, "slope"], ["p"]),
        helper.make_node("Abs", ["p"], ["q"]),
        helper.make_node("Pow", ["q", "e"], ["r"]),
        helper.make_node("Max", ["r", "c0"], ["y"]),
    ]
    model = model_of(nodes, {"x": [1, 4, 10, 10]}, {"y": [1, 8, 10, 10]}, {"w": w, "slope": slope, "e": exponent})
    x = rng.standard_normal((1, 4, 10, 10)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    cuda = woodpecker.compile(model, target="cuda")
    assert cuda.kernels
    (got,) = cuda.emulate({"x": x})
    np.testing.assert_allclose(got, expected[0], rtol=RTOL, atol=ATOL, equal_nan=True)
