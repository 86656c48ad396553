"""LSTM and GRU unrolled at import (importer/converters/recurrent.py), compiled end to end and
compared with ONNX Runtime (rtol 1e-4, atol 1e-5): directions, initial states, biases,
linear_before_reset, batch-first layout, used/unused outputs; unsupported forms are one error."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker import CompileOptions
from woodpecker.errors import UnsupportedOperatorError

ort = pytest.importorskip("onnxruntime")

T, B, FEATURES, H = 5, 3, 4, 6


def _model(op: str, attrs: dict[str, Any], initial: bool, outputs: list[str]) -> tuple[onnx.ModelProto, dict]:
    gates = 4 if op == "LSTM" else 3
    d = 2 if attrs.get("direction") == "bidirectional" else 1
    batch_first = attrs.get("layout", 0) == 1
    rng = np.random.default_rng(gates + d + int(initial))
    arrays = {
        "W": rng.standard_normal((d, gates * H, FEATURES)).astype(np.float32) * 0.5,
        "R": rng.standard_normal((d, gates * H, H)).astype(np.float32) * 0.5,
        "B": rng.standard_normal((d, 2 * gates * H)).astype(np.float32) * 0.5,
    }
    x_shape = [B, T, FEATURES] if batch_first else [T, B, FEATURES]
    state_shape = [B, d, H] if batch_first else [d, B, H]
    feeds = {"X": rng.standard_normal(x_shape).astype(np.float32)}
    inputs = ["X", "W", "R", "B", ""]
    if initial:
        feeds["h0"] = rng.standard_normal(state_shape).astype(np.float32)
        inputs.append("h0")
        if op == "LSTM":
            feeds["c0"] = rng.standard_normal(state_shape).astype(np.float32)
            inputs.append("c0")
    node = helper.make_node(op, inputs, outputs, hidden_size=H, **attrs)
    graph = helper.make_graph(
        [node],
        "rnn",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in feeds.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs if n],
        [numpy_helper.from_array(a, n) for n, a in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    return onnx.shape_inference.infer_shapes(model), feeds


CASES: dict[str, tuple[str, dict[str, Any], bool, list[str]]] = {
    "lstm_forward_initial": ("LSTM", {}, True, ["Y", "Y_h", "Y_c"]),
    "lstm_bidirectional": ("LSTM", {"direction": "bidirectional"}, False, ["Y", "Y_h", "Y_c"]),
    "lstm_reverse": ("LSTM", {"direction": "reverse"}, True, ["Y", "", "Y_c"]),
    "gru_forward": ("GRU", {}, False, ["Y", "Y_h"]),
    "gru_bidirectional_initial": ("GRU", {"direction": "bidirectional"}, True, ["", "Y_h"]),
    "gru_linear_before_reset": ("GRU", {"linear_before_reset": 1, "direction": "reverse"}, True, ["Y", "Y_h"]),
    "gru_linear_before_reset_zero_state": ("GRU", {"linear_before_reset": 1}, False, ["Y"]),
}


@pytest.mark.parametrize("opt_level", [0, 2], ids=["O0", "O2"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_recurrence_matches_onnxruntime(name: str, opt_level: int) -> None:
    model, feeds = _model(*CASES[name])
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    options = CompileOptions(opt_level=opt_level, libraries="none", use_tuning_records=False)
    got = woodpecker.compile(model, options=options).run(None, feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_batch_first_layout_is_layout_0_transposed(op: str) -> None:
    """layout=1 (X [B, T, I], Y [B, T, D, H], states [B, D, H]; ONNX Runtime's CPU LSTM has no
    layout 1): the same numbers as layout 0 on the transposed data."""
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    attrs = {"direction": "bidirectional"}
    first, first_feeds = _model(op, attrs | {"layout": 1}, True, outputs)
    zero, _ = _model(op, attrs, True, outputs)
    feeds = {n: np.ascontiguousarray(a.transpose(1, 0, 2)) for n, a in first_feeds.items()}
    expected = ort.InferenceSession(zero.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = woodpecker.compile(first).run(None, first_feeds)
    np.testing.assert_allclose(got[0], expected[0].transpose(2, 0, 1, 3), rtol=1e-4, atol=1e-5)
    for g, e in zip(got[1:], expected[1:], strict=True):
        np.testing.assert_allclose(g, e.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"activations": ["Relu", "Tanh", "Tanh"]}, r"activations \['Relu', 'Tanh', 'Tanh'\] are not supported"),
        ({"clip": 2.0}, "attribute 'clip' is not supported"),
    ],
)
def test_unsupported_forms_are_one_error(attrs: dict[str, Any], message: str) -> None:
    model, _ = _model("LSTM", attrs, False, ["Y"])
    with pytest.raises(UnsupportedOperatorError, match=message):
        woodpecker.compile(model)


def test_run_time_weights_are_one_error() -> None:
    model, _ = _model("GRU", {}, False, ["Y"])
    w = model.graph.initializer[0]
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w.dims)))
    del model.graph.initializer[0]
    with pytest.raises(UnsupportedOperatorError, match=r"input W .* must be a constant"):
        woodpecker.compile(model)
