"""A CPU model compiled once, saved (shared library, weights, manifest.json) and run by
`woodpecker.load` with numpy and ctypes alone; tampered or foreign directories refused with one
line; `compile()` generates the machine code, so the first `run()` compiles nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.backend.cpu import CpuOptions
from woodpecker.compiler import CompileOptions
from woodpecker.models import bundled_model_path, small_mlp
from woodpecker.runtime.cpu import host
from woodpecker.runtime.cpu.deploy import CpuModelError
from woodpecker.runtime.cpu.onednn import availability as onednn_availability

ort = pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[2]
RTOL = 1e-5  # relative L2 error against ONNX Runtime


def conv_graph() -> onnx.ModelProto:
    """Two convolutions with ReLU on 1x8x16x16: the first one is a oneDNN call, the second generated."""
    rng = np.random.default_rng(0)

    def init(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["y"], name="relu1"),
    ]
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 16, 16])],
        [init("w0", (16, 8, 3, 3)), init("b0", (16,)), init("w1", (16, 16, 3, 3)), init("b1", (16,))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# name -> (the model, the kernels' explicit implementations, the channel layout)
MODELS: dict[str, tuple[Callable[[], onnx.ModelProto], dict, str]] = {
    "bundled": (lambda: onnx.load(bundled_model_path()), {}, "auto"),
    "onednn_conv": (conv_graph, {"k0_conv": {"impl": "onednn"}}, "nchw"),
    "onednn_blocked_conv": (conv_graph, {"blocked_conv": {"impl": "onednn"}}, "auto"),
    "blas_matmul": (small_mlp, {"matmul": {"impl": "blas"}}, "auto"),
}


def compile_model(name: str) -> tuple[onnx.ModelProto, woodpecker.CompiledModel]:
    build, schedules, layout = MODELS[name]
    model = build()
    libraries = "all" if schedules else "none"
    options = CompileOptions(
        libraries=libraries, select="heuristic", cpu=CpuOptions(schedules=schedules or None), layout=layout
    )
    return model, woodpecker.compile(model, options=options)


def feeds_of(model: woodpecker.CompiledModel) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {n: rng.standard_normal(model.input_shapes[n]).astype(np.float32) for n in model.input_names}


def relative_l2(got: np.ndarray, want: np.ndarray) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


# A process where `import mlir` raises: what a deployment host without MLIR sees.
NO_MLIR_RUN = """
import sys
class NoMlir:
    def find_spec(self, name, path=None, target=None):
        if name == "mlir" or name.startswith("mlir."):
            raise ImportError("mlir is not installed here")
sys.meta_path.insert(0, NoMlir())
import numpy as np
import woodpecker
model = woodpecker.load(sys.argv[1])
feeds = dict(np.load(sys.argv[2]))
outputs = model.run(None, feeds)
np.savez(sys.argv[3], **dict(zip(model.output_names, outputs)))
print(sorted(n for n in sys.modules if n == "mlir" or n.startswith("mlir.")), type(model).__name__)
"""


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_saved_model_runs_without_mlir_like_onnxruntime(name: str, tmp_path: Path) -> None:
    if name != "bundled" and onednn_availability() is not None:
        pytest.skip(f"oneDNN unavailable: {onednn_availability()}")
    onnx_model, compiled = compile_model(name)
    if name != "bundled":
        assert compiled.stats.library_kernels >= 1
    feeds = feeds_of(compiled)
    saved = compiled.save(tmp_path / "model")
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["format"] == "woodpecker.cpu-model"
    assert manifest["target"]["features"] == host.isa_features()
    assert ("onednn" in manifest["libraries"]) == name.startswith("onednn_")
    assert ("blas" in manifest["libraries"]) == (name == "blas_matmul")
    np.savez(tmp_path / "feeds.npz", **feeds)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    done = subprocess.run(
        [sys.executable, "-c", NO_MLIR_RUN, str(saved), str(tmp_path / "feeds.npz"), str(tmp_path / "out.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "DeployedCpuModel"]
    got = np.load(tmp_path / "out.npz")
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    for output, want in zip(compiled.output_names, expected, strict=True):
        assert relative_l2(got[output], want) <= RTOL, output
        # The same machine code as the in-memory model.
        np.testing.assert_array_equal(got[output], compiled.run([output], feeds)[0])


class _NoEngine:
    """Stands in for the ExecutionEngine after compile: any use (a look-up compiles) fails. It
    holds the engine, which owns the machine code."""

    def __init__(self, engine: object) -> None:
        self.__dict__["held"] = engine

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the engine was used after compile ({name}): code generated on run")


def test_compile_generates_the_machine_code_and_the_first_run_compiles_nothing() -> None:
    onnx_model, compiled = compile_model("bundled")
    assert compiled.stats.stage_seconds["machine-code"] > 0
    feeds = feeds_of(compiled)
    compiled.executable.engine = _NoEngine(compiled.executable.engine)  # type: ignore[assignment]
    (logits, _probs) = compiled.run(None, feeds)
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert relative_l2(logits, session.run(None, feeds)[0]) <= RTOL


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if onednn_availability() is not None:
        pytest.skip(f"oneDNN unavailable: {onednn_availability()}")
    _, compiled = compile_model("onednn_conv")
    return compiled.save(tmp_path_factory.mktemp("saved") / "model")


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def _write_manifest(directory: Path, data: object) -> None:
    (directory / "manifest.json").write_text(json.dumps(data))


def _edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A tampering that changes manifest.json in place."""

    def apply(directory: Path) -> None:
        data = _manifest(directory)
        change(data)
        _write_manifest(directory, data)

    return apply


def _replace_weights_with_float64(directory: Path) -> None:
    block = np.load(directory / "weights.npy")
    np.save(directory / "weights.npy", block.astype(np.float64)[: block.size // 2])


def _flip_a_code_byte(directory: Path) -> None:
    data = bytearray((directory / "model.so").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (directory / "model.so").write_bytes(bytes(data))


def _absent_feature() -> str:
    flags = host.cpu_flags()
    return next(f for f in ("amx_tile", "avx512_fp16", "avx512f", "avx2", "wpk_future_isa") if f not in flags)


TAMPERED: dict[str, tuple[Callable[[Path], None], str]] = {
    "a list, not an object": (lambda d: _write_manifest(d, [_manifest(d)]), "a JSON list, not an object"),
    "no inputs": (_edit(lambda m: m.pop("inputs")), "missing 'inputs'"),
    "library outside": (_edit(lambda m: m["library"].update(file="../model.so")), "lies outside the directory"),
    "absolute library": (_edit(lambda m: m["library"].update(file="/etc/passwd")), "lies outside the directory"),
    "library size": (_edit(lambda m: m["library"].update(bytes=m["library"]["bytes"] + 1)), "the manifest says"),
    "changed code": (_flip_a_code_byte, "sha256 is not the manifest's"),
    "weights size": (_edit(lambda m: m["weights"].update(bytes=m["weights"]["bytes"] - 4)), "the manifest says"),
    "float64 weights": (_replace_weights_with_float64, "float64 data, expected float32"),
    "input dtype": (_edit(lambda m: m["inputs"][0].update(dtype="float64")), "dtype 'float64'"),
    "input shape": (_edit(lambda m: m["inputs"][0].update(shape=[1, 8, 32, 32])), "do not match the code's arguments"),
    "weight shape": (
        _edit(lambda m: m["weights"]["arrays"][0].update(shape=[m["weights"]["arrays"][0]["shape"][0] * 2])),
        "do not match the code's arguments",
    ),
    "weight too large": (_edit(lambda m: m["weights"]["arrays"][-1].update(shape=[1 << 20])), "lie outside the"),
    "weight offset": (_edit(lambda m: m["weights"]["arrays"][-1].update(offset=1 << 30)), "lie outside the"),
    "weight reshaped": (_edit(lambda m: m["weights"]["arrays"][1].update(shape=[4, 4])), "do not match the code"),
    "shape not a list": (_edit(lambda m: m["outputs"][0].update(shape="1x16")), "is str '1x16', not list"),
    "library call params": (
        _edit(lambda m: m["library_calls"][0]["params"].update(strides=[2, 2])),
        "not the one the code was compiled with",
    ),
    "library call kernel": (
        _edit(lambda m: m["library_calls"][0].update(kernel="../k0_conv")),
        "is not a plain file name",
    ),
    "unknown runtime library": (_edit(lambda m: m["libraries"].append("libfoo")), "unknown library 'libfoo'"),
    "format version": (_edit(lambda m: m.update(version=99)), "expected 'woodpecker.cpu-model' version 2"),
    "other machine": (_edit(lambda m: m["target"].update(machine="riscv64")), "compiled for riscv64"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_model_is_refused_with_one_line(case: str, saved: Path, tmp_path: Path) -> None:
    directory = Path(shutil.copytree(saved, tmp_path / "model"))
    tamper, expected = TAMPERED[case]
    tamper(directory)
    with pytest.raises(CpuModelError) as caught:
        woodpecker.load(directory)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_a_model_compiled_for_other_vector_extensions_is_refused(saved: Path, tmp_path: Path) -> None:
    directory = Path(shutil.copytree(saved, tmp_path / "model"))
    feature = _absent_feature()
    _edit(lambda m: m["target"]["features"].append(feature))(directory)
    with pytest.raises(CpuModelError, match=f"compiled for a CPU with {feature}, which this CPU .* lacks"):
        woodpecker.load(directory)


def test_wpk_compile_writes_a_cpu_model(tmp_path: Path) -> None:
    from woodpecker.cli.main import main

    out = tmp_path / "cli-model"
    args = ["compile", str(bundled_model_path()), "--target", "cpu", "--libraries", "none", "-o", str(out)]
    assert main([*args, "--select", "heuristic"]) == 0
    model = woodpecker.load(out)
    assert model.input_names == ["input"]
    assert model.manifest.target["llvm_opt_level"] in (2, 3)
