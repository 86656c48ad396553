"""The index ops end to end: Einsum's exporter equations (float32, which the ONNX node tests lack:
theirs are float64), integer arithmetic at run time on the edge cases (truncating Div, both Mod
signs, zero divisors, INT_MIN / -1, int32 wrap), ArgMax/ArgMin with ties and NaN, CumSum of
float data on every axis, OneHot of float and negative indices, and the one-line errors.

References: numpy (float64 for float data, exact for integers) with rtol 1e-4, atol 1e-5; the
integer and index results compare exactly. Each is compiled at O0 and O2.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker import CompileOptions
from woodpecker.errors import UnsupportedOperatorError
from woodpecker.ops.index import cumsum, integer_binary

RTOL, ATOL = 1e-4, 1e-5
LEVELS = pytest.mark.parametrize("opt_level", [0, 2])
ELEMENT = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
           np.dtype(np.int32): TensorProto.INT32}  # fmt: skip


def model_of(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, np.ndarray],
    outputs: dict[str, tuple[list[int], int]],
    initializers: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, ELEMENT[a.dtype], a.shape) for n, a in inputs.items()],
        [helper.make_tensor_value_info(n, t, s) for n, (s, t) in outputs.items()],
        [numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    onnx.checker.check_model(model, full_check=True)
    return model


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], opt_level: int) -> list[np.ndarray]:
    options = CompileOptions(opt_level=opt_level, libraries="none", use_tuning_records=False)
    return woodpecker.compile(model, options=options).run(None, feeds)


RNG = np.random.default_rng(16)


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------
# Einsum.

EINSUM_CASES = [
    ("bhid,bhjd->bhij", (2, 3, 5, 4), (2, 3, 6, 4)),  # Q K^T: matmul_transposed
    ("bhij,bhjd->bhid", (2, 3, 5, 6), (2, 3, 6, 4)),  # P V
    ("bij,bjk->bik", (3, 4, 5), (3, 5, 2)),
    ("ij,jk->ik", (4, 5), (5, 3)),
    ("bik,bjk->bji", (2, 3, 4), (2, 5, 4)),  # the output transposed
    ("ik,kj->ji", (3, 4), (4, 2)),
    ("i,i->", (7,), (7,)),  # inner product
    ("i,j->ij", (3,), (4,)),  # outer product (no contracted letter)
    ("bij,bjk->bk", (2, 3, 4), (2, 4, 5)),  # i summed from one operand first
]


@LEVELS
@pytest.mark.parametrize(("equation", "a_shape", "b_shape"), EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_of_two_operands_matches_numpy(equation: str, a_shape, b_shape, opt_level: int) -> None:
    a, b = _f32(*a_shape), _f32(*b_shape)
    expected = np.einsum(equation, a.astype(np.float64), b.astype(np.float64))
    node = helper.make_node("Einsum", ["a", "b"], ["y"], equation=equation)
    model = model_of([node], {"a": a, "b": b}, {"y": (list(expected.shape), TensorProto.FLOAT)})
    (got,) = run(model, {"a": a, "b": b}, opt_level)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@LEVELS
@pytest.mark.parametrize("equation", ["ij->ji", "ijk->ki", "ij->i", "bhij->bhji"])
def test_einsum_of_one_operand_is_a_transpose_or_sum(equation: str, opt_level: int) -> None:
    x = _f32(*[2, 3, 4, 5][: equation.index("-")])
    expected = np.einsum(equation, x.astype(np.float64))
    node = helper.make_node("Einsum", ["x"], ["y"], equation=equation)
    (got,) = run(model_of([node], {"x": x}, {"y": (list(expected.shape), TensorProto.FLOAT)}), {"x": x}, opt_level)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("equation", "out_shape", "reason"),
    [
        ("ii->i", [3], "repeats a letter"),
        ("...ij,...jk->...ik", [3, 3], "ellipsis"),
        ("ij,jk", [3, 3], "no explicit output"),
    ],
)
def test_einsum_outside_the_supported_equations_is_one_line(equation: str, out_shape: list[int], reason: str) -> None:
    inputs = {"x": _f32(3, 3), "z": _f32(3, 3)} if "," in equation else {"x": _f32(3, 3)}
    node = helper.make_node("Einsum", list(inputs), ["y"], equation=equation)
    with pytest.raises(UnsupportedOperatorError) as info:
        woodpecker.compile(model_of([node], inputs, {"y": (out_shape, TensorProto.FLOAT)}))
    first = str(info.value).splitlines()[0]
    assert "(op Einsum)" in first and reason in first


# ----------------------------------------------------------------------------
# Integer arithmetic at run time.

INT_OPS = [("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Div", "div"), ("Max", "max"), ("Min", "min")]


def _integers(dtype: type) -> tuple[np.ndarray, np.ndarray]:
    info = np.iinfo(dtype)
    a = np.array([7, -7, 7, -7, 0, 5, info.min, info.min, info.max, 3, -9, 12], dtype=dtype)
    b = np.array([2, 2, -2, -2, 3, 0, -1, 1, 2, 0, 4, -5], dtype=dtype)
    return a, b


@LEVELS
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
@pytest.mark.parametrize(("onnx_op", "kind"), INT_OPS, ids=[o for o, _ in INT_OPS])
def test_integer_binary_ops_are_exact(onnx_op: str, kind: str, dtype: type, opt_level: int) -> None:
    a, b = _integers(dtype)
    node = helper.make_node(onnx_op, ["a", "b"], ["y"])
    element = ELEMENT[np.dtype(dtype)]
    (got,) = run(model_of([node], {"a": a, "b": b}, {"y": ([a.size], element)}), {"a": a, "b": b}, opt_level)
    expected = integer_binary(kind, a, b)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)
    if kind == "div":  # truncation toward zero (C), not numpy's floor; Python ints, wrapped to dtype
        bits = np.iinfo(dtype).bits
        for x, y, g in zip(a.tolist(), b.tolist(), got.tolist(), strict=True):
            q = 0 if y == 0 else (abs(x) // abs(y)) * (1 if (x < 0) == (y < 0) else -1)
            q = (q + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
            assert g == q, f"{x} / {y}: got {g}, expected {q}"


@LEVELS
@pytest.mark.parametrize("fmod", [0, 1])
def test_integer_mod_signs_and_broadcast(fmod: int, opt_level: int) -> None:
    a = np.array([[7, -7, 7, -7, 0, 9], [5, -5, 13, -13, 1, -1]], dtype=np.int64)
    b = np.array([3, 3, -3, -3, 5, 0], dtype=np.int64)
    node = helper.make_node("Mod", ["a", "b"], ["y"], fmod=fmod)
    (got,) = run(model_of([node], {"a": a, "b": b}, {"y": ([2, 6], TensorProto.INT64)}), {"a": a, "b": b}, opt_level)
    safe = np.where(b == 0, 1, b)
    expected = np.where(b == 0, 0, np.fmod(a, safe) if fmod else np.mod(a, safe))
    np.testing.assert_array_equal(got, expected)


@LEVELS
def test_integer_chain_with_a_constant_and_unary_ops(opt_level: int) -> None:
    """(|x| - 3) * -x + Max(x, 1, -x): constants become i64 operands, Neg/Abs stay integer."""
    x = np.array([[-4, 2, 0], [9, -1, 5]], dtype=np.int64)
    nodes = [
        helper.make_node("Abs", ["x"], ["ax"]),
        helper.make_node("Sub", ["ax", "three"], ["d"]),
        helper.make_node("Neg", ["x"], ["nx"]),
        helper.make_node("Mul", ["d", "nx"], ["m"]),
        helper.make_node("Max", ["x", "one", "nx"], ["s"]),
        helper.make_node("Add", ["m", "s"], ["y"]),
    ]
    consts = {"three": np.array(3, np.int64), "one": np.array([1], np.int64)}
    (got,) = run(model_of(nodes, {"x": x}, {"y": ([2, 3], TensorProto.INT64)}, consts), {"x": x}, opt_level)
    np.testing.assert_array_equal(got, (np.abs(x) - 3) * -x + np.maximum(np.maximum(x, 1), -x))


# ----------------------------------------------------------------------------
# ArgMax, ArgMin; CumSum; OneHot.


@LEVELS
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_reduce_ties_and_nan(op: str, last: int, opt_level: int) -> None:
    x = np.array([[1, 3, 3, 0], [2, np.nan, 5, np.nan], [-1, -1, -1, -1]], dtype=np.float32)
    node = helper.make_node(op, ["x"], ["y"], axis=1, keepdims=0, select_last_index=last)
    (got,) = run(model_of([node], {"x": x}, {"y": ([3], TensorProto.INT64)}), {"x": x}, opt_level)
    pick = np.argmax if op == "ArgMax" else np.argmin
    expected = 3 - pick(x[:, ::-1], axis=1) if last else pick(x, axis=1)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)  # numpy: the first (last) NaN is the extremum


@LEVELS
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_of_a_random_tensor(op: str, dtype: type, opt_level: int) -> None:
    """Integer data has many ties (values in [-20, 20)): the first index of each extremum."""
    floats = (RNG.standard_normal((2, 37, 11)) * 100).astype(np.float32)
    x = floats if dtype is np.float32 else RNG.integers(-20, 20, (2, 37, 11)).astype(dtype)
    node = helper.make_node(op, ["x"], ["y"], axis=-2)
    (got,) = run(model_of([node], {"x": x}, {"y": ([2, 1, 11], TensorProto.INT64)}), {"x": x}, opt_level)
    pick = np.argmax if op == "ArgMax" else np.argmin
    np.testing.assert_array_equal(got, pick(x, axis=1)[:, None, :])


@LEVELS
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize(("exclusive", "reverse"), [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum_of_float_data(axis: int, exclusive: int, reverse: int, opt_level: int) -> None:
    x = _f32(3, 4, 5)
    node = helper.make_node("CumSum", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)
    consts = {"axis": np.array(axis, np.int64)}
    (got,) = run(model_of([node], {"x": x}, {"y": ([3, 4, 5], TensorProto.FLOAT)}, consts), {"x": x}, opt_level)
    expected = cumsum(x.astype(np.float64), axis % 3, bool(exclusive), bool(reverse))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_cumsum_with_a_run_time_axis_is_one_line() -> None:
    node = helper.make_node("CumSum", ["x", "axis"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
         helper.make_tensor_value_info("axis", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    with pytest.raises(UnsupportedOperatorError) as info:
        woodpecker.compile(model)
    first = str(info.value).splitlines()[0]
    assert "(op CumSum)" in first and "axis" in first and "must be a constant" in first


@LEVELS
def test_one_hot_of_float_and_negative_indices(opt_level: int) -> None:
    indices = np.array([[0.0, 2.7, -1.0], [3.0, -4.0, 9.0]], dtype=np.float32)  # 9 is out of range
    node = helper.make_node("OneHot", ["indices", "depth", "values"], ["y"], axis=1)
    consts = {"depth": np.array(4, np.int64), "values": np.array([-2.0, 5.0], np.float32)}
    model = model_of([node], {"indices": indices}, {"y": ([2, 4, 3], TensorProto.FLOAT)}, consts)
    (got,) = run(model, {"indices": indices}, opt_level)
    index = np.trunc(indices).astype(np.int64)
    index = np.where(index < 0, index + 4, index)
    expected = np.where(index[:, None, :] == np.arange(4)[None, :, None], 5.0, -2.0)
    np.testing.assert_array_equal(got, expected.astype(np.float32))


@LEVELS
@pytest.mark.parametrize("index_type", [np.int64, np.int32])
def test_gather_elements_at_run_time_indices(index_type: type, opt_level: int) -> None:
    """Indices a graph input (negative ones count from the end), smaller than data off the axis."""
    x = _f32(4, 5, 3)
    indices = RNG.integers(-5, 5, (3, 7, 2)).astype(index_type)
    node = helper.make_node("GatherElements", ["x", "i"], ["y"], axis=1)
    model = model_of([node], {"x": x, "i": indices}, {"y": ([3, 7, 2], TensorProto.FLOAT)})
    (got,) = run(model, {"x": x, "i": indices}, opt_level)
    expected = np.take_along_axis(x[:3, :, :2], np.where(indices < 0, indices + 5, indices).astype(np.int64), axis=1)
    np.testing.assert_array_equal(got, expected)


@LEVELS
@pytest.mark.parametrize(("dtype", "upper", "k"), [(np.bool_, 1, -1), (np.int32, 0, 2), (np.float32, 1, 3)])
def test_trilu_of_bool_int32_and_float_data(dtype: type, upper: int, k: int, opt_level: int) -> None:
    draw = RNG.standard_normal((2, 4, 6))
    x = (draw > 0) if dtype is np.bool_ else (draw * 9).astype(dtype)
    element = {np.bool_: TensorProto.BOOL, np.int32: TensorProto.INT32, np.float32: TensorProto.FLOAT}[dtype]
    node = helper.make_node("Trilu", ["x", "k"], ["y"], upper=upper)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", element, [2, 4, 6])],
        [helper.make_tensor_value_info("y", element, [2, 4, 6])],
        [numpy_helper.from_array(np.array(k, np.int64), "k")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    (got,) = run(model, {"x": x}, opt_level)
    expected = np.triu(x, k) if upper else np.tril(x, k)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, expected)
