"""Whole-model tests: the builder networks and the bundled demo model, compiled with
`woodpecker.compile` at every optimization level and compared with onnxruntime (rtol=1e-4,
atol=1e-5), plus the `CompiledModel.run` calling conventions (onnxruntime.InferenceSession.run
semantics).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

import woodpecker
from woodpecker.models import bundled_model_path, small_mlp, tiny_resnet

ort = pytest.importorskip("onnxruntime")

RTOL = 1e-4
ATOL = 1e-5
REPO_ROOT = Path(__file__).resolve().parents[2]

BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {"tiny_resnet": tiny_resnet, "small_mlp": small_mlp}
OPSETS = (11, 13, 17, 18)
OUTPUTS = {"tiny_resnet": ["logits", "probs"], "small_mlp": ["features", "mean"]}
OPT_LEVELS = (0, 1, 2)


@functools.cache
def _model(builder: str, opset: int, batch: int = 1) -> onnx.ModelProto:
    return BUILDERS[builder](batch=batch, opset=opset)


@functools.cache
def _compiled(builder: str, opset: int, batch: int = 1, opt_level: int = 2) -> woodpecker.CompiledModel:
    return woodpecker.compile(_model(builder, opset, batch), opt_level=opt_level)


def _input_shape(model: onnx.ModelProto) -> list[int]:
    return [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]


def _feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"input": rng.standard_normal(_input_shape(model)).astype(np.float32)}


def _reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _assert_close(names: list[str], got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for name, g, e in zip(names, got, expected, strict=True):
        assert isinstance(g, np.ndarray), f"output '{name}' is a {type(g).__name__}, not an ndarray"
        assert g.dtype == np.float32, f"output '{name}': dtype {g.dtype}"
        assert g.shape == e.shape, f"output '{name}': shape {g.shape}, expected {e.shape}"
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"output '{name}'")


# --- the builders themselves (need only onnx/onnxruntime) ---------------------------------------


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_builder_is_valid_and_deterministic(builder: str, opset: int) -> None:
    model = _model(builder, opset)
    onnx.checker.check_model(model, full_check=True)
    assert [o.name for o in model.graph.output] == OUTPUTS[builder]
    again = BUILDERS[builder](batch=1, opset=opset)
    assert again.SerializeToString(deterministic=True) == model.SerializeToString(deterministic=True)
    outs = _reference(model, _feeds(model))
    assert all(np.isfinite(o).all() and o.std() > 0 for o in outs)


def test_builders_cover_their_ops() -> None:
    resnet_ops = {n.op_type for n in _model("tiny_resnet", 17).graph.node}
    assert resnet_ops == {
        "Conv", "BatchNormalization", "Relu", "MaxPool", "Add", "AveragePool",
        "GlobalAveragePool", "Flatten", "Gemm", "Softmax",
    }  # fmt: skip
    mlp_ops = {n.op_type for n in _model("small_mlp", 17).graph.node}
    assert {
        "MatMul", "Add", "Relu", "Gemm", "Sigmoid", "Tanh", "LeakyRelu", "Clip",
        "Concat", "Transpose", "Reshape", "Pad", "ReduceMean",
    } <= mlp_ops  # fmt: skip
    resnet = _model("tiny_resnet", 17)
    bn_mean = [i for i in resnet.graph.initializer if i.name.startswith("bn_mean")]
    bn_var = [i for i in resnet.graph.initializer if i.name.startswith("bn_var")]
    assert bn_mean and bn_var
    assert all(np.abs(onnx.numpy_helper.to_array(t)).max() > 0 for t in bn_mean)
    assert all(np.abs(onnx.numpy_helper.to_array(t) - 1).max() > 0 for t in bn_var)


def test_bundled_model_is_small_and_up_to_date() -> None:
    path = bundled_model_path()
    assert path.is_file(), f"{path} is missing; run tools/make_bundled_model.py"
    assert path.stat().st_size < 2 * 1024 * 1024
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    try:
        import make_bundled_model
    finally:
        sys.path.remove(str(REPO_ROOT / "tools"))
    assert path.read_bytes() == make_bundled_model.build(), "stale: run tools/make_bundled_model.py"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert _input_shape(model) == [1, 3, 64, 64]


# --- compiled with woodpecker -------------------------------------------------------------------


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=[f"O{level}" for level in OPT_LEVELS])
@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_model_matches_onnxruntime(builder: str, opset: int, opt_level: int) -> None:
    model = _model(builder, opset)
    compiled = _compiled(builder, opset, opt_level=opt_level)
    assert compiled.input_names == ["input"]
    assert compiled.output_names == OUTPUTS[builder]
    for seed in (0, 1):
        feeds = _feeds(model, seed)
        _assert_close(OUTPUTS[builder], compiled.run(None, feeds), _reference(model, feeds))


@pytest.mark.parametrize("opt_level", [0, 2], ids=["O0", "O2"])
def test_tiny_resnet_batch_2(opt_level: int) -> None:
    model = _model("tiny_resnet", 17, batch=2)
    feeds = _feeds(model)
    got = _compiled("tiny_resnet", 17, batch=2, opt_level=opt_level).run(None, feeds)
    _assert_close(OUTPUTS["tiny_resnet"], got, _reference(model, feeds))
    np.testing.assert_allclose(got[1].sum(axis=1), np.ones(2), rtol=1e-5)


@pytest.mark.parametrize(("as_type", "opt_level"), [(str, 2), (Path, 1), ("proto", 0)])
def test_bundled_model_matches_onnxruntime(as_type: type | str, opt_level: int) -> None:
    path = bundled_model_path()
    model = onnx.load(str(path))
    compiled = woodpecker.compile(model if as_type == "proto" else as_type(path), opt_level=opt_level)
    feeds = _feeds(model)
    _assert_close(compiled.output_names, compiled.run(None, feeds), _reference(model, feeds))


def test_run_selects_and_orders_outputs() -> None:
    model = _model("tiny_resnet", 17)
    compiled = _compiled("tiny_resnet", 17)
    feeds = _feeds(model)
    logits, probs = _reference(model, feeds)
    all_outputs = compiled.run(None, feeds)
    assert isinstance(all_outputs, list) and len(all_outputs) == 2
    (only_probs,) = compiled.run(["probs"], feeds)
    _assert_close(["probs"], [only_probs], [probs])
    (only_logits,) = compiled.run(["logits"], feeds)
    _assert_close(["logits"], [only_logits], [logits])
    reordered = compiled.run(["probs", "logits"], feeds)
    _assert_close(["probs", "logits"], reordered, [probs, logits])


def test_run_is_repeatable_and_uses_fresh_inputs() -> None:
    model = _model("small_mlp", 17)
    compiled = _compiled("small_mlp", 17)
    a, b = _feeds(model, 0), _feeds(model, 1)
    a_before = a["input"].copy()
    first = compiled.run(None, a)
    first_copy = [x.copy() for x in first]
    other = compiled.run(None, b)
    second = compiled.run(None, a)
    for x, y, z in zip(first, first_copy, second, strict=True):
        np.testing.assert_array_equal(x, y, err_msg="a later run() overwrote an earlier result")
        np.testing.assert_array_equal(x, z, err_msg="run() is not repeatable")
    assert not np.allclose(first[0], other[0]), "run() ignored its new inputs"
    np.testing.assert_array_equal(a["input"], a_before, err_msg="run() modified the caller's input")


def test_run_accepts_non_contiguous_input() -> None:
    model = _model("small_mlp", 17)
    compiled = _compiled("small_mlp", 17)
    feeds = _feeds(model)
    transposed = {"input": np.asfortranarray(feeds["input"])}
    _assert_close(OUTPUTS["small_mlp"], compiled.run(None, transposed), _reference(model, feeds))


# --- errors ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet() -> tuple[woodpecker.CompiledModel, dict[str, np.ndarray]]:
    return _compiled("tiny_resnet", 17), _feeds(_model("tiny_resnet", 17))


def test_wrong_input_name(resnet: tuple[woodpecker.CompiledModel, dict[str, np.ndarray]]) -> None:
    compiled, feeds = resnet
    with pytest.raises(ValueError, match="not_the_input"):
        compiled.run(None, {"not_the_input": feeds["input"]})


def test_missing_input(resnet: tuple[woodpecker.CompiledModel, dict[str, np.ndarray]]) -> None:
    compiled, _ = resnet
    with pytest.raises(ValueError, match="input"):
        compiled.run(None, {})


def test_wrong_input_shape(resnet: tuple[woodpecker.CompiledModel, dict[str, np.ndarray]]) -> None:
    compiled, feeds = resnet
    bad = np.zeros((1, 3, 16, 16), dtype=np.float32)
    with pytest.raises(ValueError, match=r"'input'.*shape|shape.*'input'"):
        compiled.run(None, {"input": bad})
    with pytest.raises(ValueError, match="input"):
        compiled.run(None, {"input": feeds["input"][0]})


def test_wrong_input_dtype(resnet: tuple[woodpecker.CompiledModel, dict[str, np.ndarray]]) -> None:
    compiled, feeds = resnet
    for dtype in (np.float64, np.int32, np.float16):
        with pytest.raises(ValueError, match=r"'input'.*dtype|dtype.*'input'"):
            compiled.run(None, {"input": feeds["input"].astype(dtype)})


def test_wrong_output_name(resnet: tuple[woodpecker.CompiledModel, dict[str, np.ndarray]]) -> None:
    compiled, feeds = resnet
    with pytest.raises(ValueError, match="no_such_output"):
        compiled.run(["no_such_output"], feeds)
