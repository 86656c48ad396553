"""wpk-convert-layout end to end: resnet-like graphs compiled with the blocked layout at every
opt level against onnxruntime (rtol 1e-4, atol 1e-5), and the IR the pass leaves."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import woodpecker
from woodpecker.compiler import CompileOptions
from woodpecker.errors import CompilationError
from woodpecker.models import tiny_resnet
from woodpecker.models.builders import _GraphBuilder

ort = pytest.importorskip("onnxruntime")

RTOL, ATOL = 1e-4, 1e-5
F32 = TensorProto.FLOAT


def depthwise_concat_net(batch: int = 1, image: int = 12, seed: int = 0) -> onnx.ModelProto:
    """conv 3->24 + bn + relu6, depthwise 3x3 (24 channels: padded blocks), pointwise 24->32,
    a residual-free concat of two 32-channel branches (block multiples), max pool, a channel
    scale (Mul by a per-channel constant) and a Div by a constant, global pool, flatten, gemm."""
    g = _GraphBuilder(17, seed)
    x = g.clip(g.batch_norm(g.conv("input", 3, 24, 3, 1, 1, bias=True), 24), 0.0, 6.0)
    dw = g.weight("dw_w", (24, 1, 3, 3), 9)
    x = g.node("Conv", [x, dw], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], group=24)
    x = g.node("Relu", [g.batch_norm(x, 24)])
    a = g.node("Relu", [g.batch_norm(g.conv(x, 24, 32, 1), 32)])
    b = g.node("Sigmoid", [g.conv(x, 24, 32, 3, 1, 1, bias=True)])
    x = g.node("Concat", [a, b], axis=1)
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    scale = g.const("scale", np.linspace(0.5, 1.5, 64, dtype=np.float32).reshape(1, 64, 1, 1))
    x = g.node("Mul", [x, scale])
    x = g.node("Div", [x, g.const("div", np.full((64, 1, 1), 2.0, np.float32))])
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
    logits = g.node("Gemm", [x, g.weight("fc_w", (10, 64), 64), g.vector("fc_b", 10)], output="logits", transB=1)
    del logits
    return g.model(
        "depthwise_concat",
        [helper.make_tensor_value_info("input", F32, [batch, 3, image, image])],
        [helper.make_tensor_value_info("logits", F32, [batch, 10])],
    )


MODELS = {
    "resnet": lambda: tiny_resnet(image=16, channels=(16, 32)),
    "resnet_c8": lambda: tiny_resnet(image=16, channels=(8, 24)),
    "depthwise_concat": depthwise_concat_net,
}


@functools.cache
def _model(name: str) -> onnx.ModelProto:
    return MODELS[name]()


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return {"input": np.random.default_rng(1).standard_normal(shape).astype(np.float32)}


def _optimized_ir(model: onnx.ModelProto, opt_level: int, layout: str) -> str:
    stages: dict[str, str] = {}

    def keep(stage: str, module: object) -> None:
        stages.setdefault(stage, str(module).split("{-#")[0])

    options = CompileOptions(opt_level=opt_level, layout=layout, on_stage=keep, libraries="none")
    woodpecker.compile(model, options=options)
    return stages["optimize"]


@pytest.mark.parametrize("layout", ["blocked", "blocked8"])
@pytest.mark.parametrize("opt_level", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_blocked_layout_matches_onnxruntime(name: str, opt_level: int, layout: str) -> None:
    model = _model(name)
    feeds = _feeds(model)
    compiled = woodpecker.compile(model, options=CompileOptions(opt_level=opt_level, layout=layout))
    got = compiled.run(None, feeds)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def test_reorders_only_at_region_boundaries() -> None:
    text = _optimized_ir(_model("resnet"), 2, "blocked16")
    assert text.count('"wpk.blocked_conv2d"') == 6
    assert '"wpk.conv2d"' not in text and '"wpk.fused_conv2d"' not in text
    # in: the graph input (3 channels in blocks of 1: NCHW memory); out: before the global pool.
    assert text.count('"wpk.to_blocked"') == 1 and "block = 1 :" in text
    assert text.count('"wpk.from_blocked"') == 1
    assert text.index('"wpk.from_blocked"') < text.index('"wpk.global_avg_pool"')


def test_depthwise_concat_block_and_division() -> None:
    text = _optimized_ir(_model("depthwise_concat"), 2, "blocked16")
    assert text.count('"wpk.blocked_conv2d"') == 4
    assert "groups = 32" in text  # the depthwise conv over 24 channels padded to 2 blocks


def test_nchw_layout_leaves_the_graph_alone() -> None:
    text = _optimized_ir(_model("resnet"), 2, "nchw")
    assert "blocked" not in text


def test_bad_layout_is_one_error() -> None:
    with pytest.raises(CompilationError, match="layout must be auto, nchw, blocked or blocked<N>, got 'nhwc'"):
        woodpecker.compile(_model("resnet"), options=CompileOptions(layout="nhwc"))


@pytest.mark.parametrize("layout", ["blocked16", "blocked8"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_onednn_runs_the_blocked_convolutions_in_the_layout(name: str, layout: str) -> None:
    """With oneDNN every blocked conv (first layer on NCHW memory, blocked, depthwise) is a oneDNN
    call on the blocked tensors themselves (onednn.BlockedConvolution: the primitive is created
    for the layout's formats, so it has no reorder to make)."""
    from woodpecker.runtime.cpu import onednn

    if onednn.availability() is not None:
        pytest.skip(f"oneDNN unavailable: {onednn.availability()}")
    model = _model(name)
    feeds = _feeds(model)
    compiled = woodpecker.compile(model, options=CompileOptions(layout=layout, libraries="onednn"))
    choices = [c for c in compiled.selection if c.kind == "blocked_conv"]
    assert choices and all(c.choice == "onednn" for c in choices)
    got = compiled.run(None, feeds)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def test_unfused_elementwise_ops_follow_the_layout_at_opt_level_1() -> None:
    """Without wpk-fuse the relus and residual adds are plain ops: they run blocked too."""
    text = _optimized_ir(_model("resnet"), 1, "blocked16")
    assert '"wpk.relu"' not in text and '"wpk.add"' not in text
    assert text.count('"wpk.blocked_conv2d"') == 6
    assert text.count('"wpk.to_blocked"') == 1 and text.count('"wpk.from_blocked"') == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_real_models_in_the_blocked_layout_match_onnxruntime(name: str) -> None:
    """The real models of test_real_models.py (torchvision, random weights, $WPK_MODELS_DIR) at O2
    with the host's blocks: every conv in the layout, against onnxruntime (the tolerances there)."""
    import os
    from pathlib import Path

    path = Path(os.environ.get("WPK_MODELS_DIR", Path(__file__).resolve().parents[2] / ".cache" / "models"))
    path = path / f"{name}.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is absent: run `python tools/export_torchvision_models.py` (needs torch, torchvision)")
    feeds = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)}
    (want,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    compiled = woodpecker.compile(path, options=CompileOptions(layout="blocked"))
    assert not [c for c in compiled.selection if c.kind in ("conv", "depthwise_conv")]
    (got,) = compiled.run(None, feeds)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-5 * float(np.abs(want).max()))


def _conv_node_cases() -> list:
    from conformance import select_cases

    from woodpecker.importer import SUPPORTED_OPS

    return [case for case in select_cases(SUPPORTED_OPS) if "Conv" in case.ops]


@pytest.mark.parametrize("layout", ["blocked8", "blocked16"])
@pytest.mark.parametrize("node_case", _conv_node_cases(), ids=str)
def test_conv_node_tests_in_the_blocked_layout(
    node_case: object, layout: str, node_test_dir: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ONNX Conv node tests (test_node_conformance.py's selection and known limitations) at O2
    with the layout forced on; the filter and bias, graph inputs there, are frozen into
    initializers (as the conformance runner freezes its compile-time operands) so that the convs
    can be packed at compile time and run blocked."""
    import dataclasses

    import conformance.cases
    from conformance import SkipCase, check_node_case
    from test_node_conformance import KNOWN_LIMITATIONS, LIMITATION_ERRORS

    monkeypatch.setitem(conformance.cases.FROZEN_INPUTS, "Conv", (1, 2))
    case = dataclasses.replace(node_case, directory=node_test_dir / "node" / node_case.name)
    blocked: list[int] = []

    def compile_fn(model: object) -> object:
        def count(stage: str, module: object) -> None:
            if stage == "optimize":
                blocked.append(str(module).count('"wpk.blocked_conv2d"'))

        return woodpecker.compile(model, options=CompileOptions(layout=layout, on_stage=count))

    try:
        check_node_case(case, compile_fn, KNOWN_LIMITATIONS, LIMITATION_ERRORS)
    except SkipCase as exc:
        pytest.skip(str(exc))
    assert blocked and all(n >= 1 for n in blocked), "the conv did not run blocked"
