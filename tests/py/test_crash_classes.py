"""Crashes and hangs (issue #19): each class fails with one clear line or computes the right result.

1. graph outputs that alias each other, a graph input or an initializer (segfaulted in the CPU's
   buffer-results-to-out-params): every output its own result, on the CPU and the CUDA path;
2. an intermediate that cannot be allocated: refused before running, naming the buffer;
3. schedules whose vectors unroll into huge code (GlobalAveragePool): bounded by the host's
   vector width (see also test_schedule_budget.py);
4. a model path that is a FIFO, a device or too large: one clear line, no hang.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.errors import ModelLoadError
from woodpecker.importer.loader import MAX_MODEL_BYTES
from woodpecker.lowering.outputs import OUTPUT_COPY_ATTR

ort = pytest.importorskip("onnxruntime")

ALIAS_SHAPE = [2, 3]


def _alias_model(case: str) -> onnx.ModelProto:
    """x [2, 3] -> MatMul(x, m) = r plus, per case, outputs that are r again, x or an initializer."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 3)).astype(np.float32), "m")]
    nodes = [helper.make_node("MatMul", ["x", "m"], ["r"], name="mm")]
    outputs = {
        "listed_twice": ["r", "r"],
        "identity": ["r", "i"],
        "dropout": ["d", "r"],
        "identity_and_twice": ["i", "r", "r", "i"],
        "graph_input": ["r", "x"],
        "input_twice": ["x", "x"],
        "initializer": ["r", "c"],
        "initializer_twice": ["c", "r", "c"],
        "constant_node": ["k", "r"],
        "reshape_of_output": ["r", "f"],
    }[case]
    if "c" in outputs:
        inits.append(numpy_helper.from_array(rng.standard_normal(ALIAS_SHAPE).astype(np.float32), "c"))
    if "i" in outputs:
        nodes.append(helper.make_node("Identity", ["r"], ["i"], name="same"))
    if "d" in outputs:
        nodes.append(helper.make_node("Dropout", ["r"], ["d"], name="drop"))
    if "k" in outputs:
        value = numpy_helper.from_array(np.full(ALIAS_SHAPE, 2.5, np.float32))
        nodes.append(helper.make_node("Constant", [], ["k"], name="const", value=value))
    if "f" in outputs:
        nodes.append(helper.make_node("Flatten", ["r"], ["f"], name="flat", axis=0))
    shapes = {"f": [1, 6]}
    graph = helper.make_graph(
        nodes,
        "aliases",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ALIAS_SHAPE)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shapes.get(o, ALIAS_SHAPE)) for o in outputs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


ALIAS_CASES = [
    "listed_twice",
    "identity",
    "dropout",
    "identity_and_twice",
    "graph_input",
    "input_twice",
    "initializer",
    "initializer_twice",
    "constant_node",
    "reshape_of_output",
]


def _reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("case", ALIAS_CASES)
def test_aliased_outputs_match_onnxruntime_on_the_cpu(case: str) -> None:
    model = _alias_model(case)
    x = np.random.default_rng(1).standard_normal(ALIAS_SHAPE).astype(np.float32)
    compiled = woodpecker.compile(model)
    outputs = compiled.run(None, {"x": x})
    expected = _reference(model, {"x": x})
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-5, atol=1e-5)
    # Every output is its own array: writing one never changes another.
    assert len({o.ctypes.data for o in outputs}) == len(outputs)


@pytest.mark.parametrize("case", ["identity_and_twice", "graph_input", "initializer_twice", "constant_node"])
def test_aliased_outputs_match_onnxruntime_on_the_cuda_path(case: str) -> None:
    """The CUDA plan of the same models, its kernels run on the CPU (emulation): every output
    buffer is written by exactly one kernel."""
    model = _alias_model(case)
    x = np.random.default_rng(2).standard_normal(ALIAS_SHAPE).astype(np.float32)
    compiled = woodpecker.compile(model, target="cuda")
    outputs = compiled.emulate({"x": x})
    for got, want in zip(outputs, _reference(model, {"x": x}), strict=True):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-5, atol=1e-5)
    written = [step_out for step_out in compiled.plan.outputs]
    assert len({buffer for _, buffer in written}) == len(written)


def test_each_returned_value_of_the_lowered_main_is_distinct() -> None:
    from woodpecker.frontend import lower_model
    from woodpecker.graph.outline_weights import main_func

    lowered = lower_model(_alias_model("identity_and_twice"))
    with lowered.imported.context:
        block = main_func(lowered.module).regions[0].blocks[0]
        ret = block.operations[len(block.operations) - 1]
        returned = list(ret.operands)
        assert len(set(returned)) == len(returned) == 4
        copies = [v.owner for v in returned if OUTPUT_COPY_ATTR in v.owner.attributes]
        assert len(copies) == 3  # r is returned by its matmul once, then copied


# -- 4. a model path that is not a regular file of bounded size ---------------------------------


def _matmul_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.arange(64 * 8, dtype=np.float32).reshape(64, 8) / 100.0, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _external_model(directory: Path, location: str = "weights.bin") -> Path:
    path = directory / "model.onnx"
    onnx.save_model(_matmul_model(), path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    if location != "weights.bin":
        model = onnx.load(path, load_external_data=False)
        for entry in model.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        onnx.save_model(model, path)
    return path


def test_a_fifo_as_the_model_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    with pytest.raises(ModelLoadError, match=r"model.onnx': a FIFO, not a regular file"):
        woodpecker.import_onnx(fifo)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_a_device_as_the_model_is_refused(path: str) -> None:
    with pytest.raises(ModelLoadError, match=rf"'{path}': a character device, not a regular file"):
        woodpecker.import_onnx(path)


def test_a_directory_or_an_oversized_file_as_the_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="a directory, not a regular file"):
        woodpecker.import_onnx(tmp_path)
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:
        f.truncate(MAX_MODEL_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ModelLoadError, match=rf"{MAX_MODEL_BYTES + 1} bytes, more than the {MAX_MODEL_BYTES} allowed"):
        woodpecker.import_onnx(big)


def test_external_data_inside_the_directory_is_loaded(tmp_path: Path) -> None:
    path = _external_model(tmp_path)
    x = np.random.default_rng(3).standard_normal((1, 64)).astype(np.float32)
    (y,) = woodpecker.compile(path).run(None, {"x": x})
    want = x.astype(np.float64) @ (np.arange(64 * 8).reshape(64, 8) / 100.0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-4)


def test_external_data_outside_the_directory_or_not_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"\0" * 64 * 8 * 4)
    path = _external_model(tmp_path / "model", "../secret.bin")
    with pytest.raises(ModelLoadError, match="lies outside the directory"):
        woodpecker.import_onnx(path)
    (tmp_path / "model" / "link.bin").symlink_to(outside)
    path = _external_model(tmp_path / "model", "link.bin")
    with pytest.raises(ModelLoadError, match="lies outside the directory"):
        woodpecker.import_onnx(path)
    os.mkfifo(tmp_path / "model" / "fifo.bin")
    path = _external_model(tmp_path / "model", "fifo.bin")
    with pytest.raises(ModelLoadError, match=r"fifo\.bin: not a regular file"):
        woodpecker.import_onnx(path)
    (tmp_path / "model" / "short.bin").write_bytes(b"\0" * 16)
    path = _external_model(tmp_path / "model", "short.bin")
    with pytest.raises(ModelLoadError, match=r"short\.bin: bytes \[\d+, \d+\) lie outside its 16 bytes"):
        woodpecker.import_onnx(path)
