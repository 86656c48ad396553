"""`wpk`'s arguments and ends: no abbreviations, help on every option, one-line errors with the
same exit codes in every sub-command (2 usage, 1 failure, 130 Ctrl-C), `--version`, which tuning
records a command uses, `wpk compile` measuring nothing unless asked; and the Python API's
checks of what `run` and `compile` are given (`woodpecker.runtime.feeds`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import woodpecker
from woodpecker.cli import measure, tune_report
from woodpecker.cli.main import build_parser, main, package_version
from woodpecker.errors import InputError, ShapeError, WoodpeckerError
from woodpecker.models import bundled_model_path

MODEL = str(bundled_model_path())


@pytest.fixture(autouse=True)
def _own_tuning_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default tuning database of these tests is theirs, never ~/.cache/woodpecker's."""
    monkeypatch.setenv("WOODPECKER_TUNING_DB", str(tmp_path / "default-tuning.db"))


def _relu(path: Path, dims: list[int | str]) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu0")],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _parsers() -> list[argparse.ArgumentParser]:
    """Every parser of `wpk`: the top one, each sub-command's, and the stand-alone ones."""
    top = build_parser()
    found = [top, measure_parser(), tune_report.build_parser()]
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += list(action.choices.values())
    return found


def measure_parser() -> argparse.ArgumentParser:
    from woodpecker.cli.parsing import WpkArgumentParser

    parser = WpkArgumentParser(prog="wpk measure")
    measure.add_arguments(parser)
    return parser


def _error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if ": tuning records: " not in line]


def test_no_parser_takes_abbreviations() -> None:
    parsers = _parsers()
    assert len(parsers) == 8
    assert all(parser.allow_abbrev is False for parser in parsers)


def test_every_option_has_help() -> None:
    missing = [
        f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
        for parser in _parsers()
        for action in parser._actions
        if not (action.help or "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize(
    "argv",
    [
        ["tune", "--input", "x=1x2"],  # was --input-shape
        ["run", "--no-comp"],  # was --no-compare
        ["compile", MODEL, "--sel", "measure"],  # was --select
    ],
)
def test_an_abbreviation_is_a_usage_error(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    option = next(a for a in argv if a.startswith("--"))
    assert len(lines) == 1 and lines[0].startswith(f"wpk {argv[0]}: error: unrecognized arguments: {option}")


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["run", "--repeat", "0"], "--repeat"),
        (["run", "--repeat", "x"], "--repeat"),
        (["run", "--seed", "-1"], "--seed"),
        (["tune", "--threads", "0"], "--threads"),
        (["tune", "--threads", "-3"], "--threads"),
        (["tune", "--trials", "0"], "--trials"),
        (["tune", "--timeout", "0"], "--timeout"),
        (["measure", ".", "--repeat", "0"], "--repeat"),
        (["measure", ".", "--timeout", "nan"], "--timeout"),
        (["run", "--input-shape", "x=1xx2"], "--input-shape"),
        (["run", "--input", "x=x.npy"], "--input"),
        (["compile", MODEL, "-o", "{file}"], "-o/--output"),
        (["tune-report", "-o", "{file}"], "-o/--output-dir"),
        (["run", "--output", "{file}"], "--output"),
    ],
)
def test_a_bad_argument_is_a_usage_error_naming_the_option(argv, option, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    argv = [a.replace("{file}", str(tmp_path / "file")) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wpk {argv[0]}: error: argument {option}"), captured.err


def test_input_options_naming_no_input_or_changing_a_static_dimension(tmp_path: Path, capsys) -> None:
    model = str(_relu(tmp_path / "m.onnx", [2, 3]))
    np.save(tmp_path / "z.npy", np.zeros((2, 3), np.float32))
    cases = [
        (["run", model, "--input", f"z=@{tmp_path / 'z.npy'}"], "argument --input z=@", "no input 'z'"),
        (["run", model, "--input-shape", "z=2x3"], "argument --input-shape z=2x3", "no input 'z'"),
        (["run", model, "--input-shape", "x=4x3"], "argument --input-shape x=4x3", "dimension 0 of input 'x'"),
        (["compile", model, "--input-shape", "x=2x3x1"], "argument --input-shape x=2x3x1", "rank 2"),
        (["tune", model, "--input-shape", "x=4x3"], "argument --input-shape x=4x3", "fixed to 2 by the model"),
    ]
    for argv, option, words in cases:
        assert main(argv) == 2, argv
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and lines[0].startswith(f"wpk {argv[0]}: error: {option}") and words in lines[0]
    # repeating what the model says is fine
    assert main(["run", model, "--input-shape", "x=2x3", "--repeat", "1", "--no-compare"]) == 0
    assert "output 'y': shape (2, 3)" in capsys.readouterr().out


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"wpk {package_version()}" and package_version()[0].isdigit()


@pytest.mark.parametrize("command", ["run", "compile"])
def test_a_failure_is_exit_1_with_the_sub_command_prefix(command: str, tmp_path: Path, capsys) -> None:
    assert main([command, str(tmp_path / "missing.onnx")]) == 1
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(f"wpk {command}: error: ") and "missing.onnx" in lines[0]


def test_ctrl_c_is_130_and_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(woodpecker.compiler, "compile", interrupted)
    assert main(["compile", MODEL]) == 130
    assert _error_lines(capsys.readouterr().err) == ["wpk compile: interrupted"]


def test_the_commands_say_which_tuning_records_they_use(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "t.db")
    parser = build_parser()
    assert main(["tune-report", "--db", db, "-o", str(tmp_path / "r")]) != 0
    assert capsys.readouterr().err.splitlines()[0] == f"wpk tune-report: tuning records: {db} (read only)"
    for argv, use in [
        (["run"], "read only"),
        (["run", "--select", "measure"], "read and written: --select measure records its measurements"),
        (["compile", MODEL], "read only"),
        (["tune", "--export-records", "x"], "read only"),
        (["tune"], "read and written"),
    ]:
        args = parser.parse_args([*argv, "--db", db])
        assert args.records_use(args) == use, argv
    args = parser.parse_args(["run", "--no-records", "--select", "heuristic"])
    assert args.records_use(args) is None


def test_compile_and_run_agree_on_the_default_and_compile_measures_nothing(tmp_path: Path, capsys) -> None:
    parser = build_parser()
    assert parser.parse_args(["compile", MODEL]).select == parser.parse_args(["run"]).select == "records"
    assert woodpecker.CompileOptions().select == "records"
    db = tmp_path / "t.db"
    assert main(["compile", MODEL, "--db", str(db)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == f"wpk compile: tuning records: {db} (read only)"
    assert not db.exists()  # nothing measured, nothing recorded


# -- the Python API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compiled():
    return woodpecker.compile(MODEL, options=woodpecker.CompileOptions(libraries="none", use_tuning_records=False))


def _feeds(model) -> dict[str, np.ndarray]:
    return {"input": np.zeros(model.input_shapes["input"], np.float32)}


@pytest.mark.parametrize(
    ("output_names", "feeds", "words"),
    [
        (None, None, "feeds must be a dict {input name: numpy array}, as for onnxruntime, not None"),
        (None, "list", "not a list (write {'input': array}); the inputs are ['input']"),
        ("logits", "ok", "not the str 'logits' (write ['logits'])"),
        (["nope"], "ok", "unknown output name 'nope'; the outputs are ['logits', 'probs']"),
        (None, {"input": np.zeros((1, 3, 64, 64), np.float64)}, "input 'input' has dtype float64"),
        (None, {"input": np.zeros((1, 3, 32, 32), np.float32)}, "input 'input' has shape (1, 3, 32, 32)"),
        (None, {"input": [[0.0]]}, "input 'input' is a list, not a numpy array"),
        (None, {}, "missing input 'input'"),
        (None, {"inptu": np.zeros(1, np.float32)}, "feeds name 'inptu', which is not an input"),
    ],
    ids=["none", "list", "str-output", "unknown-output", "dtype", "shape", "python-list", "missing", "unknown-input"],
)
def test_run_checks_what_it_is_given(compiled, output_names, feeds, words) -> None:
    if feeds == "ok":
        feeds = _feeds(compiled)
    elif feeds == "list":
        feeds = list(_feeds(compiled).values())
    with pytest.raises(InputError) as info:
        compiled.run(output_names, feeds)
    assert isinstance(info.value, WoodpeckerError) and words in str(info.value) and "\n" not in str(info.value)


def test_run_takes_a_tuple_of_output_names(compiled) -> None:
    (probs,) = compiled.run(("probs",), _feeds(compiled))
    assert probs.shape == (1, 10)


@pytest.mark.parametrize(
    ("shapes", "words"),
    [
        ({"x": [1, 1.7]}, "dimension 1.7 is a float, not an int"),
        ({"x": "2x3"}, "is a str, not a list of ints"),
        ({"x": [2, True]}, "dimension True is a bool"),
        ({"x": [2, 0]}, "must have positive dimensions"),
        ([("x", [2, 3])], "input_shapes must be a dict"),
    ],
)
def test_compile_checks_input_shapes(tmp_path: Path, shapes, words) -> None:
    model = _relu(tmp_path / "dyn.onnx", ["N", 3])
    with pytest.raises(ShapeError) as info:
        woodpecker.compile(model, input_shapes=shapes)
    assert words in str(info.value) and "\n" not in str(info.value)
