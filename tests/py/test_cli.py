"""The `wpk` command line: the main job on the bundled model, input shapes, and error reporting."""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from woodpecker.cli.common import parse_input_shape
from woodpecker.cli.main import main


def _relu_model(path: Path, dims: list[int | str]) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu0")],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _error_lines(err: str) -> list[str]:
    """stderr without the line saying which tuning records the command uses."""
    return [line for line in err.strip().splitlines() if ": tuning records: " not in line]


def test_parse_input_shape() -> None:
    assert parse_input_shape("data=1x3x224x224") == ("data", (1, 3, 224, 224))
    assert parse_input_shape("a=b=2x2") == ("a=b", (2, 2))
    for bad in ("data", "=1x2", "data=1xx2", "data=0x3", "data=-1x3"):
        with pytest.raises(argparse.ArgumentTypeError, match="--input-shape"):
            parse_input_shape(bad)


def test_run_bundled_model_prints_output_agreement_and_latency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "tiny_resnet.onnx" in out
    assert "output 'probs': shape (1, 10)" in out
    assert "agreement with onnxruntime on 'probs'" in out and "OK at rtol=1e-4" in out
    assert "woodpecker latency: median" in out and "latency ratio woodpecker/onnxruntime" in out


def test_run_dynamic_model_needs_and_accepts_input_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _relu_model(tmp_path / "dyn.onnx", ["N", 4])
    assert main(["run", str(model), "--repeat", "1"]) == 1
    err = _error_lines(capsys.readouterr().err)
    assert err[0].startswith("wpk run: error:") and "--input-shape x=" in err[0] and len(err) == 1
    assert main(["run", str(model), "--input-shape", "x=3x4", "--repeat", "1"]) == 0
    assert "output 'y': shape (3, 4)" in capsys.readouterr().out


def test_run_reports_bad_files_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage")
    for path in (broken, tmp_path / "missing.onnx"):
        assert main(["run", str(path), "--no-compare"]) == 1
        err = _error_lines(capsys.readouterr().err)
        assert err[0].startswith("wpk run: error:") and len(err) == 1


def test_run_with_schedule_file_applies_it_and_rejects_bad_knobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"kernels": {"conv": {"parallel": false, "tile_oh": 2}}}')
    assert main(["run", "--repeat", "1", "--schedule", str(good)]) == 0
    assert "OK at rtol=1e-4" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"conv": {"tile_f": 3}}')
    assert main(["run", "--repeat", "1", "--schedule", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "knob 'tile_f'" in err and "not in its domain" in err
