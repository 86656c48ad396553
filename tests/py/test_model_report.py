"""tools/model_report.py on a directory of three tiny models: one that compiles (its relative L2
against ONNX Runtime is reported), one with an op Woodpecker has no converter for (the error
line and the missing op, counted), one with int token-id inputs (Cast has no converter here, so it is
reported, not run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from model_check import blocking_ops, rel_l2
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("onnxruntime")

TOOL = Path(__file__).resolve().parents[2] / "tools" / "model_report.py"


def _save(path: Path, nodes, inputs, inits=()) -> None:
    graph = helper.make_graph(nodes, path.stem, inputs, [onnx.ValueInfoProto(name="y")], list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_the_report_has_one_row_per_model(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, (4, 8))
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32), "w")
    n = helper.make_node
    _save(tmp_path / "good.onnx", [n("MatMul", ["x", "w"], ["m"]), n("Relu", ["m"], ["y"])], [x], [w])
    blocked = [n("LpNormalization", ["x"], ["e"]), n("LpNormalization", ["e"], ["y"])]  # no converter
    _save(tmp_path / "blocked.onnx", blocked, [x])
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, (1, 16))
    _save(tmp_path / "tokens.onnx", [helper.make_node("NonZero", ["input_ids"], ["y"])], [ids])
    out = tmp_path / "rows.json"
    done = subprocess.run([sys.executable, str(TOOL), str(tmp_path), "--latency", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = {r["model"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"good", "blocked", "tokens"}
    assert rows["good"]["compiles"] and rows["good"]["rel_l2"] <= 1e-6
    assert rows["good"]["wpk_ms"] > 0 and rows["good"]["ort_ms"] > 0
    assert not rows["blocked"]["compiles"] and "LpNormalization" in rows["blocked"]["error"]
    assert rows["blocked"]["blocking"] == {"LpNormalization": 2}
    assert rows["tokens"]["blocking"] == {"NonZero": 1}
    assert "| good | yes |" in done.stdout
    assert "Missing op types (nodes, models): LpNormalization 2 (1 models), NonZero 1 (1 models)" in done.stdout


def test_token_inputs_are_valid_ids_and_rel_l2_compares_every_output() -> None:
    import onnxruntime as ort
    from model_check import TOKEN_IDS, seeded_feeds

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, (1, 16))
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, (1, 16))
    graph = helper.make_graph([helper.make_node("Add", ["input_ids", "attention_mask"], ["y"])], "g", [ids, mask],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, (1, 16))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = seeded_feeds(ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]))
    tokens = feeds["input_ids"]
    assert tokens.dtype == np.int64 and 0 <= tokens.min() <= tokens.max() < TOKEN_IDS
    assert (feeds["attention_mask"] == 1).all()
    assert blocking_ops(model) == {}
    a = np.ones(4, np.float32)
    assert rel_l2([a, a], [a, a]) == 0.0
    assert rel_l2([a, 2 * a], [a, a]) == pytest.approx(1.0)
    assert rel_l2([a], [np.ones(5, np.float32)]) == float("inf")
