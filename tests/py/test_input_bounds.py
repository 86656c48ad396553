"""Inputs a user hands over that must be bounded before they reach a parser or MLIR: deeply
nested JSON (Python's parser raises RecursionError) in a schedule file, an export file or a
journal, a schedule "file" that is a FIFO, and shapes whose element count would overflow
MLIR's int64 sizes and strides (which aborts the process). Each is one clear error line."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from onnx import TensorProto, helper

import woodpecker
from woodpecker.database import DatabaseError, open_database
from woodpecker.database.journal import FORMAT as JOURNAL_FORMAT
from woodpecker.database.schema import SCHEMA_VERSION
from woodpecker.database.transfer import FORMAT as EXPORT_FORMAT
from woodpecker.database.transfer import read_transfer
from woodpecker.errors import ShapeError
from woodpecker.targets.schedule_pass import ScheduleRequestError, load_request

DEEP = "[" * 100_000 + "]" * 100_000


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def test_a_deeply_nested_schedule_file_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    with pytest.raises(ScheduleRequestError) as info:
        load_request(str(path))
    assert "deep.json: invalid JSON" in _one_line(info.value)


def test_a_fifo_as_the_schedule_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "schedule.json"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(lambda: load_request(str(fifo)), outcome), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "load_request blocked on a FIFO"
    assert isinstance(outcome[0], ScheduleRequestError) and "a FIFO, not a regular file" in _one_line(outcome[0])


def _catch(fn, outcome: list[BaseException]) -> None:
    try:
        fn()
    except BaseException as err:
        outcome.append(err)


def test_a_deeply_nested_export_line_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps({"format": EXPORT_FORMAT, "version": SCHEMA_VERSION}) + "\n" + DEEP + "\n")
    with pytest.raises(DatabaseError) as info:
        read_transfer(path)
    assert "line 2: not a valid tuning-record line" in _one_line(info.value)


def test_a_deeply_nested_journal_line_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "t.journal"
    path.write_text(json.dumps({"format": JOURNAL_FORMAT, "version": SCHEMA_VERSION}) + "\n" + DEEP + "\n")
    with pytest.raises(DatabaseError) as info, open_database(path) as db:
        db.keys()
    assert "line 2 is not a valid journal entry" in _one_line(info.value)


def _relu_model(dims: list[int | str]):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu0")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("shape", [(2**62, 3), (2**47, 3)])
def test_input_shapes_beyond_the_element_limit_are_one_error(shape: tuple[int, int]) -> None:
    with pytest.raises(ShapeError) as info:
        woodpecker.compile(_relu_model(["n", 3]), input_shapes={"x": shape})
    assert "more than the 281474976710656 (2^48) a tensor may have" in _one_line(info.value)


def test_an_intermediate_beyond_the_element_limit_names_its_node() -> None:
    side = 1 << 25  # [2^25, 1] x [1, 2^25]: 2^50 elements
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"], name="outer")],
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [side, 1]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, side]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [side, side])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ShapeError) as info:
        woodpecker.compile(model)
    assert _one_line(info.value).startswith("node 'outer' (op MatMul): output 'y' [33554432, 33554432]")
