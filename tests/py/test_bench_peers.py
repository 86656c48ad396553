"""bench/bench_peers.py on the bundled tiny model: its Woodpecker + ONNX Runtime path end to end (one
round, not a timing test), a peer that is not installed as one line, and the pieces it is made of
(seeded inputs for token-id models, the Woodpecker options, the accuracy measure)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench"
TINY = REPO_ROOT / "python" / "woodpecker" / "models" / "tiny_resnet.onnx"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_peers  # noqa: E402
from peer_engines import WoodpeckerOptions  # noqa: E402


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / "bench_peers.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def _table_header(stdout: str, first_column: str, second_column: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == [first_column, second_column]:
            return cells
    raise AssertionError(f"no table starting with '{first_column} | {second_column}' in:\n{stdout}")


def test_woodpecker_and_onnxruntime_on_the_tiny_model(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "peers.json"
    engines = ["woodpecker", "onnxruntime"]
    openvino_missing = importlib.util.find_spec("openvino") is None
    if openvino_missing:
        engines.append("openvino")  # not installed here: one line, no traceback
    done = _run("--models", str(TINY), "--engines", ",".join(engines), "--rounds", "1", "--runs", "2",
                "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "machine load before: loadavg" in done.stdout and "machine load after: loadavg" in done.stdout
    assert _table_header(done.stdout, "model", "engine") == list(bench_peers.DETAIL_COLUMNS)
    assert _table_header(done.stdout, "model", "threads") == list(bench_peers.RATIO_COLUMNS)
    if openvino_missing:
        assert [line for line in done.stdout.splitlines() if line.startswith("openvino:")] == [
            "openvino: not installed (No module named 'openvino')"
        ]

    report = json.loads(out.read_text())
    by_engine = {r["engine"]: r for r in report["results"]}
    for engine in ("woodpecker", "onnxruntime"):
        result = by_engine[engine]
        assert result["status"] == "ready" and result["threads"] == 2
        assert result["runs"] == 2 and result["median_ms"] > 0 and result["compile_s"] > 0
        assert result["os_threads"] >= 1
    assert by_engine["onnxruntime"]["rel_l2"] == 0.0
    l2 = by_engine["woodpecker"]["rel_l2"]
    assert l2 is not None and math.isfinite(l2) and l2 < 1e-4
    (ratio,) = report["ratios"]
    assert ratio["model"] == "tiny_resnet" and ratio["woodpecker_over_ort"] > 0
    assert report["load_before"]["reference_loop_ms"] > 0 and 0 <= report["load_after"]["busy_share"] <= 1


def test_scaling_prints_the_speedup_per_engine(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "scaling.json"
    done = _run("--models", str(TINY), "--engines", "onnxruntime", "--rounds", "1", "--runs", "2", "--scaling",
                "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _table_header(done.stdout, "model", "engine")[-1] == "rel L2 vs ORT"
    assert "| model | engine | 1 thread ms | 2 threads ms | speedup 1 -> 2 |" in done.stdout
    report = json.loads(out.read_text())
    assert sorted(r["threads"] for r in report["results"]) == [1, 2]
    (row,) = report["scaling"]
    assert row["engine"] == "onnxruntime" and row["speedup"] > 0


def test_a_missing_model_file_is_one_line(tmp_path: Path) -> None:
    done = _run("--models", "resnet18", "--models-dir", str(tmp_path), "--engines", "onnxruntime")
    assert done.returncode == 0, done.stderr
    assert f"  resnet18: no model file in {tmp_path}, skipped" in done.stdout


def test_bad_woodpecker_options_are_a_usage_error() -> None:
    done = _run("--woodpecker-options", "opt_level=7")
    assert done.returncode == 2
    assert "bad --woodpecker-options item 'opt_level=7'" in done.stderr and "Traceback" not in done.stderr


def test_woodpecker_options_parse() -> None:
    options = WoodpeckerOptions.parse("opt_level=1, db=/tmp/r.db,schedule=s.json,no_records,libraries=none")
    assert options == WoodpeckerOptions(opt_level=1, db="/tmp/r.db", schedule="s.json", no_records=True,
                                        libraries="none")
    assert WoodpeckerOptions.parse("") == WoodpeckerOptions()
    with pytest.raises(ValueError, match="'tuning=yes'"):
        WoodpeckerOptions.parse("tuning=yes")


def test_token_id_inputs_are_valid_ids(tmp_path: Path) -> None:
    """A BERT-like graph: ids index a 50-row embedding (open batch and sequence), plus a mask and segment ids."""
    vocab = numpy_helper.from_array(np.zeros((50, 4), np.float32), "embedding")
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
              for name in ("input_ids", "attention_mask", "token_type_ids")]
    graph = helper.make_graph(
        [helper.make_node("Gather", ["embedding", "input_ids"], ["y"])], "bertish", inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [vocab],
    )
    path = tmp_path / "bertish.onnx"
    onnx.save(helper.make_model(graph), path)
    feeds = bench_peers.seeded_feeds(path, seed=3)
    ids = feeds["input_ids"]
    assert ids.shape == (1, bench_peers.DEFAULT_SEQUENCE) and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() < 50 and len(np.unique(ids)) > 10
    assert (feeds["attention_mask"] == 1).all() and (feeds["token_type_ids"] == 0).all()
    np.testing.assert_array_equal(bench_peers.seeded_feeds(path, seed=3)["input_ids"], ids)


def test_relative_l2_and_block_runs() -> None:
    expected = [np.array([3.0, 4.0])]
    assert bench_peers.relative_l2([np.array([3.0, 4.0])], expected) == 0.0
    assert bench_peers.relative_l2([np.array([3.0, 5.0])], expected) == pytest.approx(0.2)
    assert math.isnan(bench_peers.relative_l2([np.zeros(3)], expected))
    assert bench_peers.block_runs(10, first_run_ms=5.0, budget_s=10.0) == 10
    assert bench_peers.block_runs(10, first_run_ms=4000.0, budget_s=10.0) == 2
    assert bench_peers.block_runs(10, first_run_ms=60000.0, budget_s=10.0) == 1


@pytest.mark.parametrize(("body", "expected"), [
    ("exec sleep 30", "failed: no answer in 1 s"),
    ("exit 3", "failed: the worker exited with code 3"),
])
def test_a_worker_that_hangs_or_dies_is_one_failed_line(tmp_path: Path, body: str, expected: str) -> None:
    """The workers' interpreter replaced by a script that hangs or exits: the benchmark goes on, one line each."""
    fake = tmp_path / "fake-python"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    done = _run("--models", str(TINY), "--engines", "woodpecker,onnxruntime", "--rounds", "1", "--runs", "1",
                "--python", str(fake), "--timeout-s", "1", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for engine in ("woodpecker", "onnxruntime"):
        assert any(line.startswith(f"tiny_resnet {engine} x2: {expected}") for line in done.stdout.splitlines()), (
            done.stdout)
