"""The normalization and reduction family beyond the node conformance tests: LayerNormalization
on the ONNX test data for its output Y, the opset-28 ReduceLogSum data re-declared as opset 18,
ReduceLogSumExp in f32, staged long sums against numpy float64, and the error lines.

Tolerances: rtol=1e-4, atol=1e-5 (the conformance tolerances) unless stated at the test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from conformance import ATOL, RTOL, NodeCase
from conformance.cases import compare_outputs, freeze_inputs, load_case
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.errors import UnsupportedOperatorError
from woodpecker.lowering import reduction

LAYERNORM_CASES = (
    "2d_axis0", "2d_axis1", "2d_axis_negative_1", "2d_axis_negative_2",
    "3d_axis0_epsilon", "3d_axis1_epsilon", "3d_axis2_epsilon",
    "3d_axis_negative_1_epsilon", "3d_axis_negative_2_epsilon", "3d_axis_negative_3_epsilon",
    "4d_axis0", "4d_axis1", "4d_axis2", "4d_axis3",
    "4d_axis_negative_1", "4d_axis_negative_2", "4d_axis_negative_3", "4d_axis_negative_4",
    "default_axis",
)  # fmt: skip
LOG_SUM_CASES = ("asc_axes", "default", "desc_axes", "negative_axes")


def _node_case(node_test_dir: Path, name: str) -> NodeCase:
    return NodeCase(name, node_test_dir / "node" / name, frozenset(), "", 0)


def _run_node_data(model: onnx.ModelProto, data_sets: list, outputs: int, opt_level: int) -> None:
    for ds in data_sets:
        frozen_model, frozen = freeze_inputs(model, ds.inputs)
        compiled = woodpecker.compile(frozen_model, opt_level=opt_level)
        got = compiled.run(None, {k: v for k, v in ds.inputs.items() if k not in frozen})
        names = [o.name for o in frozen_model.graph.output]
        compare_outputs(names, got, ds.outputs[:outputs], RTOL, ATOL)


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("case", LAYERNORM_CASES)
def test_layer_norm_node_data_output_y(case: str, opt_level: int, node_test_dir: Path) -> None:
    """The ONNX LayerNormalization tests with outputs Mean/InvStdDev removed from the graph."""
    model, data_sets = load_case(_node_case(node_test_dir, f"test_layer_normalization_{case}"))
    node = model.graph.node[0]
    del node.output[1:]
    del model.graph.output[1:]
    _run_node_data(model, data_sets, 1, opt_level)


@pytest.mark.parametrize("case", LOG_SUM_CASES)
def test_reduce_log_sum_opset28_data_as_opset18(case: str, node_test_dir: Path) -> None:
    model, data_sets = load_case(_node_case(node_test_dir, f"test_reduce_log_sum_{case}"))
    assert model.opset_import[0].version == 28
    model.opset_import[0].version = 18
    _run_node_data(model, data_sets, 1, 2)


def _model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, Sequence[int]],
    outputs: dict[str, Sequence[int]],
    initializers: dict[str, np.ndarray] | None = None,
    opset: int = 18,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        [numpy_helper.from_array(v, n) for n, v in (initializers or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _axes(values: Sequence[int]) -> dict[str, np.ndarray]:
    return {"axes": np.array(values, dtype=np.int64)}


@pytest.mark.parametrize(("axes", "keepdims"), [([1], 1), ([0, 2], 0), ([-1], 1)])
def test_reduce_log_sum_exp_f32(axes: list[int], keepdims: int) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 5)) * 30).astype(np.float32)  # exp overflows f32 unshifted
    node = helper.make_node("ReduceLogSumExp", ["x", "axes"], ["y"], keepdims=keepdims)
    x64 = x.astype(np.float64)
    peak = x64.max(axis=tuple(axes), keepdims=True)
    want = np.log(np.exp(x64 - peak).sum(axis=tuple(axes), keepdims=True)) + peak
    if not keepdims:
        want = np.squeeze(want, axis=tuple(axes))
    model = _model([node], {"x": x.shape}, {"y": want.shape}, _axes(axes))
    (got,) = woodpecker.compile(model).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op_type", ["ReduceSum", "ReduceMean", "ReduceL2", "ReduceSumSquare"])
def test_opset13_axes_attribute(op_type: str) -> None:
    """Before opset 18 (ReduceSum: 13) the axes are an attribute."""
    x = np.random.default_rng(1).random((2, 3, 4)).astype(np.float32)
    reference = {
        "ReduceSum": lambda v: v.sum(axis=(0, 2)),
        "ReduceMean": lambda v: v.mean(axis=(0, 2)),
        "ReduceL2": lambda v: np.sqrt((v * v).sum(axis=(0, 2))),
        "ReduceSumSquare": lambda v: (v * v).sum(axis=(0, 2)),
    }[op_type]
    opset = 11 if op_type == "ReduceSum" else 13
    node = helper.make_node(op_type, ["x"], ["y"], axes=[0, -1], keepdims=0)
    (got,) = woodpecker.compile(_model([node], {"x": x.shape}, {"y": [3]}, opset=opset)).run(None, {"x": x})
    np.testing.assert_allclose(got, reference(x.astype(np.float64)), rtol=RTOL, atol=ATOL)


def _long_sum_model(op_type: str, n: int) -> onnx.ModelProto:
    node = helper.make_node(op_type, ["x", "axes"], ["y"], keepdims=0)
    return _model([node], {"x": [1, n]}, {"y": [1]}, _axes([1]))


@pytest.mark.parametrize("op_type", ["ReduceSum", "ReduceMean"])
def test_staged_sum_of_2_pow_22(op_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 x 2^22 sum (and mean) is within 3e-7 (relative, ~5 f32 ulps) of numpy float64; the
    same reduction without staging (16 lane partials of 2^18 adds each) is not (measured 1.2e-7
    staged, 1.9e-6 unstaged), so the test can fail."""
    n = 1 << 22
    x = np.random.default_rng(2).random((1, n)).astype(np.float32)
    exact = x.astype(np.float64).sum(axis=1)
    if op_type == "ReduceMean":
        exact = exact / n
    model = _long_sum_model(op_type, n)
    (staged,) = woodpecker.compile(model).run(None, {"x": x})
    staged_err = abs(float(staged[0]) - float(exact[0])) / abs(float(exact[0]))
    assert staged_err < 3e-7, f"staged {op_type} relative error {staged_err:.2e}"

    monkeypatch.setattr(reduction, "STAGE_THRESHOLD", 1 << 40)
    (sequential,) = woodpecker.compile(model).run(None, {"x": x})
    sequential_err = abs(float(sequential[0]) - float(exact[0])) / abs(float(exact[0]))
    assert sequential_err > 3e-7, f"unstaged {sequential_err:.2e} vs staged {staged_err:.2e}"


def test_staged_softmax_total() -> None:
    """Softmax over 2^20 + 3 elements (a padded last block): sums to 1 within 1e-5."""
    n = (1 << 20) + 3
    x = np.random.default_rng(3).standard_normal((1, n)).astype(np.float32)
    model = _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], {"x": [1, n]}, {"y": [1, n]}, opset=13)
    (got,) = woodpecker.compile(model).run(None, {"x": x})
    x64 = x.astype(np.float64)
    want = np.exp(x64 - x64.max()) / np.exp(x64 - x64.max()).sum()
    assert abs(float(got.astype(np.float64).sum()) - 1.0) < 1e-5
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize("with_bias", [True, False])
def test_layer_norm_bert_shape(with_bias: bool) -> None:
    """1 x 128 x 768 (BERT-base), scale and optional bias, against numpy float64."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 128, 768)).astype(np.float32) * 3 + 1
    scale = rng.standard_normal(768).astype(np.float32)
    bias = rng.standard_normal(768).astype(np.float32)
    inputs = ["x", "scale", "bias"] if with_bias else ["x", "scale"]
    node = helper.make_node("LayerNormalization", inputs, ["y"], axis=-1, epsilon=1e-12)
    inits = {"scale": scale, "bias": bias} if with_bias else {"scale": scale}
    model = _model([node], {"x": x.shape}, {"y": x.shape}, inits, opset=17)
    (got,) = woodpecker.compile(model).run(None, {"x": x})
    x64 = x.astype(np.float64)
    mean = x64.mean(-1, keepdims=True)
    want = (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(-1, keepdims=True) + 1e-12) * scale
    if with_bias:
        want = want + bias
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-4)


def _layer_norm_model(outputs: Sequence[str], **attrs: int | float) -> onnx.ModelProto:
    node = helper.make_node("LayerNormalization", ["x", "s"], list(outputs), name="ln", **attrs)
    return _model([node], {"x": [2, 4]}, {o: [2, 4] if o == "y" else [2, 1] for o in outputs if o},
                  {"s": np.ones(4, np.float32)}, opset=17)  # fmt: skip


def test_layer_norm_stats_outputs_are_one_error_line() -> None:
    with pytest.raises(UnsupportedOperatorError) as info:
        woodpecker.compile(_layer_norm_model(["y", "mean"]))
    message = str(info.value)
    assert "ln" in message and "LayerNormalization" in message and "output 1" in message
    assert "Traceback" not in message


def test_layer_norm_stash_type_error() -> None:
    with pytest.raises(UnsupportedOperatorError, match="stash_type 0"):
        woodpecker.compile(_layer_norm_model(["y"], stash_type=0))


def test_layer_norm_unused_stats_outputs_compile() -> None:
    """Mean/InvStdDev named but not used by the graph: compiles, Y only."""
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y", "m", "r"], name="ln")
    model = _model([node], {"x": [2, 4]}, {"y": [2, 4]}, {"s": np.full(4, 2.0, np.float32)}, opset=17)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    (got,) = woodpecker.compile(model).run(None, {"x": x})
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * 2
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


