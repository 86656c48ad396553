"""The vector math of lowering/vector_math.py (exp, expm1, log, log1p, tanh in arith ops, swapped
in for the math ops of CPU code by backend/expand_math.py) against float64 numpy.

Each function runs compiled, on f32 scalars (a linalg.generic, not vectorized) and on
vector<16xf32> (an scf.for of vector transfers), over a dense grid of both signs from the
smallest denormal to 1e4 plus -110..110 linearly, and ±0, ±88, ±100, ±inf and NaN. Where the
float64 result is a normal f32, the relative error is at most MAX_RELATIVE[op] (measured maxima
on an AVX-512 host, FMAs contracted: exp 8.1e-8, expm1 1.2e-7, log 7.4e-8, log1p 1.7e-7, tanh
1.5e-7, i.e. below 2 ulp); where it is a denormal, the absolute error is at most 2 denormal
steps (2.8e-45); zeros, infinities and NaN are exact. The ONNX ops built on them (Exp, Log, Tanh, Sigmoid, Softplus,
Elu, Gelu tanh, Softmax) are checked at O2 (vectorized by the schedules) with the same bounds
composed through the op.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from mlir import ir
from onnx import TensorProto, helper

import woodpecker
from woodpecker import CompileOptions
from woodpecker.backend import compile_cpu
from woodpecker.backend.cpu import CpuOptions
from woodpecker.backend.expand_math import expand_math
from woodpecker.backend.model import CompiledModel
from woodpecker.dialect import create_context

REFERENCES = {"exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "tanh": np.tanh}
MAX_RELATIVE = {"exp": 1.5e-7, "expm1": 2e-7, "log": 1.5e-7, "log1p": 2.5e-7, "tanh": 2e-7}
DENORMAL_STEP = 1.401298464324817e-45
FLT_MIN = 1.1754943508222875e-38
LANES = 16


def _grid() -> np.ndarray:
    """Both signs, 1.4e-45 (the smallest denormal) to 1e4 geometrically and -110..110 linearly,
    numbers next to 1 and -1 (log, log1p), the extremes; padded to a multiple of LANES."""
    magnitudes = np.concatenate([np.geomspace(1.4e-45, 1e4, 60000), np.linspace(0.0, 110.0, 60000)])
    near_one = 1.0 + np.arange(-200, 201) * np.float64(np.finfo(np.float32).eps)
    extremes = [0.0, 88.0, 88.72, 88.73, 89.0, 100.0, 103.9, 104.0, 1e30, 3.4e38, np.inf, FLT_MIN]
    x = np.concatenate([magnitudes, -magnitudes, near_one, -near_one, extremes, np.negative(extremes), [np.nan]])
    x = x.astype(np.float32)
    return np.concatenate([x, np.zeros(-x.size % LANES, np.float32)])


GRID = _grid()


def check_close(
    x: np.ndarray, got: np.ndarray, want: np.ndarray, rtol: float, denormal_atol: float, xtol: float = 0.0
) -> None:
    """`got` against the float64 `want`: within rtol (plus xtol * |x|) where `want` rounds to a
    normal f32, within denormal_atol where it rounds to a denormal, exact where to 0, inf or NaN."""
    with np.errstate(all="ignore"):
        rounded = want.astype(np.float32)
    normal = np.isfinite(rounded) & (np.abs(rounded) >= FLT_MIN)
    scale = np.abs(want[normal]) + (xtol / rtol * np.abs(x[normal]) if xtol else 0.0)
    error = np.abs(got[normal] - want[normal]) / scale
    worst = int(np.argmax(error)) if error.size else 0
    assert not error.size or error[worst] <= rtol, (
        f"at x = {x[normal][worst]!r}: {got[normal][worst]!r}, want {want[normal][worst]!r} (error {error[worst]:.3g})"
    )
    denormal = np.isfinite(rounded) & (rounded != 0) & ~normal
    np.testing.assert_allclose(got[denormal], want[denormal], rtol=0, atol=denormal_atol)
    special = ~normal & ~denormal
    np.testing.assert_array_equal(got[special], rounded[special], err_msg=f"at x = {x[special]}")


def check_against_float64(op: str, x: np.ndarray, got: np.ndarray) -> None:
    """The stated bounds of the math functions: MAX_RELATIVE, 2 denormal steps, else exact."""
    with np.errstate(all="ignore"):
        want = REFERENCES[op](x.astype(np.float64))
    check_close(x, got, want, MAX_RELATIVE[op], 2 * DENORMAL_STEP)


def _scalar_module(op: str, n: int) -> ir.Module:
    """@main: math.<op> on each f32 of a tensor, in a linalg.generic (no schedule vectorizes it)."""
    return ir.Module.parse(f"""
#id = affine_map<(d0) -> (d0)>
func.func @main(%x: tensor<{n}xf32>) -> tensor<{n}xf32> {{
  %e = tensor.empty() : tensor<{n}xf32>
  %r = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel"]}}
      ins(%x : tensor<{n}xf32>) outs(%e : tensor<{n}xf32>) {{
  ^bb0(%a: f32, %o: f32):
    %y = math.{op} %a : f32
    linalg.yield %y : f32
  }} -> tensor<{n}xf32>
  return %r : tensor<{n}xf32>
}}""")


def _vector_module(op: str, n: int) -> ir.Module:
    """@main: math.<op> on vector<16xf32> chunks of a tensor (n a multiple of 16)."""
    return ir.Module.parse(f"""
func.func @main(%x: tensor<{n}xf32>) -> tensor<{n}xf32> {{
  %c0 = arith.constant 0 : index
  %step = arith.constant {LANES} : index
  %end = arith.constant {n} : index
  %pad = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<{n}xf32>
  %r = scf.for %i = %c0 to %end step %step iter_args(%acc = %e) -> (tensor<{n}xf32>) {{
    %v = vector.transfer_read %x[%i], %pad {{in_bounds = [true]}} : tensor<{n}xf32>, vector<{LANES}xf32>
    %y = math.{op} %v : vector<{LANES}xf32>
    %w = vector.transfer_write %y, %acc[%i] {{in_bounds = [true]}} : vector<{LANES}xf32>, tensor<{n}xf32>
    scf.yield %w : tensor<{n}xf32>
  }}
  return %r : tensor<{n}xf32>
}}""")


MODULES = {"scalar": _scalar_module, "vector": _vector_module}


def _run_math(op: str, form: str, x: np.ndarray, vector_math: bool = True) -> np.ndarray:
    with create_context(), ir.Location.unknown():
        exe = compile_cpu(MODULES[form](op, x.size), CpuOptions(parallel=False, vector_math=vector_math))
    (got,) = exe([x])
    return got


@pytest.mark.parametrize("form", list(MODULES))
@pytest.mark.parametrize("op", list(REFERENCES))
def test_math_op_matches_float64(op: str, form: str) -> None:
    check_against_float64(op, GRID, _run_math(op, form, GRID))


def test_exp_underflows_gradually_and_overflows_at_the_f32_limits() -> None:
    x = np.array([-87.33654, -88.0, -100.0, -103.27, -103.97, -104.0, -200.0, 88.72283, 88.7229, 89.0, 200.0])
    x = np.concatenate([x, np.zeros(-x.size % LANES)]).astype(np.float32)
    got = _run_math("exp", "vector", x)
    assert 0 < got[4] < 3 * DENORMAL_STEP and got[5] == 0 and got[6] == 0
    assert np.isfinite(got[7]) and got[8] == np.inf and got[9] == np.inf and got[10] == np.inf
    check_against_float64("exp", x, got)


def test_signed_zeros_and_oddness() -> None:
    """tanh is odd (signed zeros too), log1p keeps the sign of 0, log of +-0 is -inf, below 0 NaN."""
    x = np.concatenate([[0.0, -0.0], np.geomspace(1e-30, 50, LANES * 10 - 2)]).astype(np.float32)
    tanh = _run_math("tanh", "vector", np.concatenate([x, -x]))
    np.testing.assert_array_equal(tanh[: x.size], -tanh[x.size :])
    assert np.signbit(tanh[1]) and not np.signbit(tanh[0])
    zeros = _run_math("log1p", "vector", np.array([0.0, -0.0] * (LANES // 2), np.float32))
    assert np.array_equal(np.signbit(zeros[:2]), [False, True])
    zeros = _run_math("expm1", "vector", np.array([0.0, -0.0] * (LANES // 2), np.float32))
    assert np.array_equal(zeros[:2], [0.0, 0.0])  # both +0 (-0 + 0 is +0): not IEEE's -0 for -0
    logs = _run_math("log", "vector", np.array([0.0, -0.0, -1e-45, -1.0] * (LANES // 4), np.float32))
    assert logs[0] == -np.inf and logs[1] == -np.inf and np.isnan(logs[2]) and np.isnan(logs[3])


def test_libm_math_stays_available_for_comparison() -> None:
    """vector_math=False keeps the math ops (libm): same results within the bounds."""
    got = _run_math("tanh", "vector", GRID, vector_math=False)
    check_against_float64("tanh", GRID, got)


def test_expansion_takes_f32_scalars_and_vectors_only() -> None:
    with create_context(), ir.Location.unknown():
        module = ir.Module.parse("""
func.func @f(%a: f32, %v: vector<4x8xf32>, %d: f64) -> (f32, vector<4x8xf32>, f64) {
  %x = math.exp %a : f32
  %y = math.tanh %v : vector<4x8xf32>
  %l = math.log1p %y : vector<4x8xf32>
  %z = math.exp %d : f64
  %s = math.sqrt %a : f32
  %t = arith.addf %x, %s : f32
  return %t, %l, %z : f32, vector<4x8xf32>, f64
}""")
        assert expand_math(module) == 3
        assert module.operation.verify()
        text = str(module)
    assert "math.tanh" not in text and "math.log1p" not in text
    assert text.count("math.exp") == 1 and "math.exp %arg2 : f64" in text
    assert "math.sqrt" in text
    assert "arith.bitcast" in text and "vector<4x8xi32>" in text


# ----------------------------------------------------------------------------
# The ONNX ops built on them, compiled at O2 (vectorized by the schedules).


def _onnx_model(nodes: list[onnx.NodeProto], shape: list[int], opset: int = 20) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(x))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


# op type, attributes, float64 reference, relative bound, absolute bound per |x| (Gelu: 1 + tanh
# cancels where tanh is near -1, so its error is relative to x / 2 * 2, not to the result).
# Results that are denormal in f32 may be flushed to 0 (sigmoid of x < -88.7 is 1 / (1 + inf)).
ONNX_CASES = {
    "Exp": ({}, np.exp, 2e-7, 0.0),
    "Log": ({}, np.log, 2e-7, 0.0),
    "Tanh": ({}, np.tanh, 2e-7, 0.0),
    "Sigmoid": ({}, _sigmoid, 3e-7, 0.0),
    "Softplus": ({}, _softplus, 3e-7, 0.0),
    "Elu": ({"alpha": 1.0}, _elu, 2e-7, 0.0),
    "Gelu": ({"approximate": "tanh"}, _gelu_tanh, 3e-7, 3e-7),
}


def _compile_o2(model: onnx.ModelProto) -> CompiledModel:
    return woodpecker.compile(model, options=CompileOptions(opt_level=2, libraries="none", use_tuning_records=False))


@pytest.mark.parametrize("op", list(ONNX_CASES))
def test_onnx_op_on_vector_math_matches_float64(op: str) -> None:
    attributes, reference, rtol, xtol = ONNX_CASES[op]
    x = GRID[np.abs(GRID) < 1e4] if op == "Gelu" else GRID  # x^3 overflows f32 beyond
    x = x[: x.size - x.size % 128].reshape(-1, 128)
    model = _onnx_model([helper.make_node(op, ["x"], ["y"], **attributes)], list(x.shape))
    (got,) = _compile_o2(model).run(None, {"x": x})
    with np.errstate(all="ignore"):
        want = reference(x.astype(np.float64))
    check_close(x, got, want, rtol, FLT_MIN, xtol)


def test_softmax_on_vector_math_matches_float64() -> None:
    """Against float64 exp of the f32 differences x - max (their rounding is not exp's error)."""
    x = (np.random.default_rng(0).standard_normal((12, 64, 128)) * 10).astype(np.float32)
    model = _onnx_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], list(x.shape))
    (got,) = _compile_o2(model).run(None, {"x": x})
    e = np.exp((x - x.max(axis=-1, keepdims=True)).astype(np.float64))
    np.testing.assert_allclose(got, e / e.sum(axis=-1, keepdims=True), rtol=1e-6, atol=1e-37)
