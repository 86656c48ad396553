"""`wpk run`'s inputs and outputs: --input NAME=@x.npy, --inputs feeds.npz, --output DIR|FILE.npz,
the checks of each feed against the model's input (before anything is compiled), the comparison
with ONNX Runtime (NaN on both sides agrees; a refused model is one line) and the memory line.

The models are one- or two-node `onnx.helper` graphs (compiled in a fraction of a second); the
numbers are checked against numpy in float64.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from woodpecker.cli.compare import compare
from woodpecker.cli.main import main


@pytest.fixture(autouse=True)
def _own_tuning_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default tuning database of these tests is theirs, never ~/.cache/woodpecker's."""
    monkeypatch.setenv("WOODPECKER_TUNING_DB", str(tmp_path / "default-tuning.db"))


def _model(path: Path, op: str, inputs: dict[str, list[int | str]], out: list[int | str]) -> Path:
    graph = helper.make_graph(
        [helper.make_node(op, list(inputs), ["y"], name=f"{op.lower()}0")],
        op.lower(),
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims) for name, dims in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture
def relu(tmp_path: Path) -> Path:
    return _model(tmp_path / "relu.onnx", "Relu", {"x": [2, 3]}, [2, 3])


@pytest.fixture
def add(tmp_path: Path) -> Path:
    return _model(tmp_path / "add.onnx", "Add", {"a": [2, 3], "b": [2, 3]}, [2, 3])


def _errors(err: str) -> list[str]:
    """stderr without the line that says which tuning records are used."""
    return [line for line in err.strip().splitlines() if ": tuning records: " not in line]


def _usage_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    captured = capsys.readouterr()
    lines = _errors(captured.err)
    assert len(lines) == 1 and lines[0].startswith("wpk run: error: "), captured.err
    assert "Traceback" not in captured.err
    assert all(word in lines[0] for word in words), lines[0]
    assert "compiled for cpu" not in captured.out  # refused before compiling
    return lines[0]


def test_input_file_feeds_the_model_and_output_dir_gets_one_npy_per_output(
    relu: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    assert main(["run", str(relu), "--input", f"x=@{tmp_path / 'x.npy'}", "--output", str(out), "--repeat", "1"]) == 0
    text = capsys.readouterr().out
    assert f"input 'x': {tmp_path / 'x.npy'}, shape (2, 3)" in text
    assert "agreement with onnxruntime on 'y'" in text and "OK at rtol=1e-4, atol=1e-5" in text
    y = np.load(out / "y.npy", allow_pickle=False)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.maximum(x.astype(np.float64), 0.0), rtol=0, atol=0)


def test_inputs_archive_by_name_and_an_npz_output(add: Path, tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal((2, 3)).astype(np.float32) for _ in range(2))
    np.savez(tmp_path / "feeds.npz", a=a, b=np.asfortranarray(b))
    out = tmp_path / "y.npz"
    assert main(["run", str(add), "--inputs", str(tmp_path / "feeds.npz"), "--output", str(out), "--repeat", "1"]) == 0
    with np.load(out, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["y"]
        np.testing.assert_allclose(archive["y"], a.astype(np.float64) + b, rtol=1e-7, atol=0)
    text = capsys.readouterr().out
    assert "input 'a': " in text and "feeds.npz[a]" in text


def test_some_inputs_from_files_the_rest_random(add: Path, tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "a.npy", np.ones((2, 3), np.float32))
    assert main(["run", str(add), "--input", f"a=@{tmp_path / 'a.npy'}", "--seed", "3", "--repeat", "1"]) == 0
    text = capsys.readouterr().out
    assert "input 'b': random normal (float32, seed 3), shape (2, 3)" in text and "OK at rtol" in text


def test_an_input_file_fixes_the_open_dimensions(tmp_path: Path, capsys) -> None:
    model = _model(tmp_path / "dyn.onnx", "Relu", {"x": ["N", 3]}, ["N", 3])
    x = -np.arange(15, dtype=np.float32).reshape(5, 3)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(model), "--input", f"x=@{tmp_path / 'x.npy'}", "--output", str(tmp_path / "o")]) == 0
    assert "output 'y': shape (5, 3)" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "y.npy"), np.zeros((5, 3)))


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((2, 3), np.float64), ["input 'x'", "dtype float64", "expects float32"]),
        (np.zeros((3, 2), np.float32), ["input 'x'", "shape (3, 2)", "expects (2, 3)"]),
        (np.zeros((2, 3, 1), np.float32), ["input 'x'", "shape (2, 3, 1)"]),
    ],
    ids=["dtype", "shape", "rank"],
)
def test_a_feed_that_does_not_fit_is_one_line_naming_the_input(
    relu: Path, tmp_path: Path, capsys, array: np.ndarray, words: list[str]
) -> None:
    np.save(tmp_path / "x.npy", array)
    assert main(["run", str(relu), "--input", f"x=@{tmp_path / 'x.npy'}"]) == 2
    _usage_error(capsys, "argument --input x=@", *words)


def test_bad_feed_files_are_one_line_and_never_hang(relu: Path, tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "text.npy").write_text("not an array")
    os.mkfifo(tmp_path / "fifo.npy")  # opening it for reading would block for ever
    header = {"descr": "<f4", "fortran_order": False, "shape": (2, 3)}
    with open(tmp_path / "short.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 8)
    cases = {
        "obj.npy": "pickles are not read",
        "text.npy": "not a .npy array",
        "fifo.npy": "not a regular file",
        "missing.npy": "No such file",
        "short.npy": "truncated",
    }
    for name, words in cases.items():
        assert main(["run", str(relu), "--input", f"x=@{tmp_path / name}"]) == 2, name
        _usage_error(capsys, name, words)


def test_archive_names_must_be_inputs_and_not_given_twice(add: Path, tmp_path: Path, capsys) -> None:
    z = np.zeros((2, 3), np.float32)
    np.savez(tmp_path / "extra.npz", a=z, c=z)
    assert main(["run", str(add), "--inputs", str(tmp_path / "extra.npz")]) == 2
    _usage_error(capsys, "--inputs", "array 'c' names no input", "['a', 'b']")
    np.savez(tmp_path / "ab.npz", a=z, b=z)
    np.save(tmp_path / "a.npy", z)
    assert main(["run", str(add), "--input", f"a=@{tmp_path / 'a.npy'}", "--inputs", str(tmp_path / "ab.npz")]) == 2
    _usage_error(capsys, "input 'a' is also given by --input")
    assert main(["run", str(add), "--inputs", str(tmp_path / "a.npy")]) == 2
    _usage_error(capsys, "not a .npz archive")


def test_an_output_name_that_is_no_file_name_is_refused_before_compiling(tmp_path: Path, capsys) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["dense/out:0"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("dense/out:0", TensorProto.FLOAT, [2])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert main(["run", str(path), "--output", str(tmp_path / "out")]) == 2
    _usage_error(capsys, "--output", "'dense/out:0'", "FILE.npz")
    assert main(["run", str(path), "--output", str(tmp_path / "o.npz"), "--repeat", "1"]) == 0
    with np.load(tmp_path / "o.npz") as archive:
        assert archive.files == ["dense/out:0"]


def test_nan_on_both_sides_agrees(add: Path, tmp_path: Path, capsys) -> None:
    a = np.array([[np.nan, 1, 2], [3, np.nan, 5]], np.float32)
    np.savez(tmp_path / "f.npz", a=a, b=np.ones((2, 3), np.float32))
    assert main(["run", str(add), "--inputs", str(tmp_path / "f.npz"), "--repeat", "1"]) == 0
    text = capsys.readouterr().out
    assert "OK at rtol=1e-4, atol=1e-5; 2 NaN on both sides" in text and "MISMATCH" not in text


def test_compare_counts_nan_on_one_side_and_is_chunked() -> None:
    ref = np.arange(10, dtype=np.float32)
    got = ref.copy()
    got[3] = np.nan
    got[7] += 1.0
    for chunk in (3, 1 << 20):
        agreement = compare(got, ref, rtol=1e-4, atol=1e-5, chunk=chunk)
        assert not agreement.ok and agreement.outside == 2 and agreement.nan_one_side == 1
        assert agreement.max_abs_diff == 1.0
    both = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    assert compare(both, both.copy(), 1e-4, 1e-5).ok
    assert "MISMATCH" in compare(np.zeros(2, np.float32), np.zeros(3, np.float32), 1e-4, 1e-5).text()


def test_a_mismatch_is_exit_1_with_one_error_line(relu: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    real = onnxruntime.InferenceSession

    class Shifted:  # a reference that disagrees
        def __init__(self, *args, **kwargs):
            self.session = real(*args, **kwargs)

        def run(self, names, feeds):
            return [y + 1.0 for y in self.session.run(names, feeds)]

    monkeypatch.setattr(onnxruntime, "InferenceSession", Shifted)
    assert main(["run", str(relu), "--repeat", "1"]) == 1
    captured = capsys.readouterr()
    assert "agreement with onnxruntime on 'y'" in captured.out and "MISMATCH" in captured.out
    assert _errors(captured.err) == ["wpk run: error: output 'y' differs from onnxruntime beyond rtol=1e-4, atol=1e-5"]


def test_onnxruntime_refusing_the_model_is_one_line_and_the_result_stays(
    relu: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    def refuse(*args, **kwargs):
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : Load model failed: no kernel for Relu\nStacktrace:\n...")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    assert main(["run", str(relu), "--repeat", "1"]) == 0
    captured = capsys.readouterr()
    assert "output 'y': shape (2, 3)" in captured.out and "woodpecker latency" in captured.out
    assert "reference: ONNX Runtime refused the model: [ONNXRuntimeError] : 1 : FAIL : Load model failed" in (
        captured.out
    )
    assert "Traceback" not in captured.err and "Stacktrace" not in captured.out


def test_memory_estimate_before_running(relu: Path, capsys) -> None:
    assert main(["run", str(relu), "--repeat", "1", "--no-compare"]) == 0
    text = capsys.readouterr().out
    line = next(line for line in text.splitlines() if line.startswith("memory estimate:"))
    assert "inputs 0.00 MiB + outputs 0.00 MiB + weights 0.00 MiB" in line and "activations" in line
    assert text.index("memory estimate:") < text.index("output 'y'")
