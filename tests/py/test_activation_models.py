"""Convolutions followed by an activation added through the op registry (HardSwish, HardSigmoid),
compiled end to end and compared with ONNX Runtime (rtol=1e-4, atol=1e-5 relative to the output).

* CPU at every optimization level, with generated kernels only (libraries="none") and with the
  vendor libraries competing (the default): at O2 the activation is in the convolution's
  epilogue, so the library epilogue reader (woodpecker.libs.epilogue) sees its scalar ops and
  either maps them to post-ops or refuses the library with a reason, never fails the compile;
* CUDA (`target="cuda"`, no GPU needed): the plan compiles (the cuDNN matcher reads the same
  epilogue) and its kernels, run on the CPU with their GPU schedules (`CudaModel.emulate`), agree.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker import CompileOptions

ort = pytest.importorskip("onnxruntime")

RTOL, ATOL = 1e-4, 1e-5
ACTIVATIONS = {"hardswish": ("HardSwish", {}), "hardsigmoid": ("HardSigmoid", {"alpha": 0.3, "beta": 0.4})}
CIN, COUT, HW = 16, 16, 24  # 2.7 MFLOP: large enough for the heuristic to offer oneDNN the convolution


@functools.cache
def conv_activation_model(activation: str) -> onnx.ModelProto:
    op, attrs = ACTIVATIONS[activation]
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((COUT, CIN, 3, 3)) * 0.2).astype(np.float32), "w")
    b = numpy_helper.from_array((rng.standard_normal(COUT) * 0.5).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node(op, ["c"], ["y"], name=activation, **attrs),
    ]
    graph = helper.make_graph(
        nodes,
        f"conv_{activation}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CIN, HW, HW])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, COUT, HW, HW])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model


def _feeds() -> dict[str, np.ndarray]:
    # Scaled so that both clamps of the activations (0 and 1) are reached.
    return {"x": (np.random.default_rng(1).standard_normal((1, CIN, HW, HW)) * 3).astype(np.float32)}


def _reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * float(np.max(np.abs(expected))))


@pytest.mark.parametrize("libraries", ["none", "all"])
@pytest.mark.parametrize("opt_level", [0, 1, 2], ids=["O0", "O1", "O2"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_conv_activation_matches_onnxruntime_on_cpu(activation: str, opt_level: int, libraries: str) -> None:
    model = conv_activation_model(activation)
    options = CompileOptions(
        opt_level=opt_level, libraries=libraries, select="heuristic", use_tuning_records=False, layout="nchw"
    )
    compiled = woodpecker.compile(model, options=options)
    feeds = _feeds()
    (got,) = compiled.run(None, feeds)
    _assert_close(got, _reference(model, feeds))
    if opt_level == 2:
        assert compiled.stats.num_kernels == 1  # the activation is the convolution's epilogue
    if libraries == "none":
        assert compiled.stats.library_kernels == 0


@pytest.mark.parametrize("libraries", ["none", "all"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_blocked_conv_activation_matches_onnxruntime_on_cpu(activation: str, libraries: str) -> None:
    """The default layout at O2 (NCHW[x]c): the activation is still the convolution's epilogue,
    between the reorders into and out of the blocked layout."""
    model = conv_activation_model(activation)
    options = CompileOptions(opt_level=2, libraries=libraries, select="heuristic", use_tuning_records=False)
    compiled = woodpecker.compile(model, options=options)
    feeds = _feeds()
    (got,) = compiled.run(None, feeds)
    _assert_close(got, _reference(model, feeds))
    assert compiled.stats.num_kernels == 3  # to_blocked, the convolution with its activation, from_blocked
    if libraries == "none":
        assert compiled.stats.library_kernels == 0


def test_hardswish_epilogue_is_refused_by_onednn_with_a_reason() -> None:
    """x * clip(x / 6 + 1/2, 0, 1) reads the convolution's result twice: no oneDNN post-op chain
    (the epilogue reader refuses it), so the convolution stays generated."""
    from woodpecker.runtime.cpu import onednn

    if onednn.availability() is not None:
        pytest.skip(f"oneDNN unavailable: {onednn.availability()}")
    options = CompileOptions(opt_level=2, libraries="all", select="heuristic", use_tuning_records=False, layout="nchw")
    compiled = woodpecker.compile(conv_activation_model("hardswish"), options=options)
    (conv,) = [c for c in compiled.selection if c.kind == "conv"]
    assert conv.choice == "generated"
    (refused,) = [r for r in conv.candidates if r.impl == "onednn"]
    assert refused.reason and "\n" not in refused.reason


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_conv_activation_compiles_for_cuda(activation: str) -> None:
    model = conv_activation_model(activation)
    cuda = woodpecker.compile(model, target="cuda")
    assert cuda.kernels
    feeds = _feeds()
    (got,) = cuda.emulate(feeds)
    _assert_close(got, _reference(model, feeds))
