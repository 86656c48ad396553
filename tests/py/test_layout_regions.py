"""Layout regions (graph/convert_layout.py): listing them, fixing each one's choice
(CompileOptions.layout_regions), numerics against ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.compiler import CompileOptions
from woodpecker.errors import CompilationError
from woodpecker.frontend import layout_regions

RTOL, ATOL = 1e-4, 1e-4


def two_region_net(seed: int = 0) -> onnx.ModelProto:
    """conv_a (3->16) + relu, a channel softmax (not layout-aware: the region ends), conv_b
    (16->24) + relu, conv_c (24->16) + the residual from the softmax."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    inits = [
        weight("wa", 16, 3, 3, 3), weight("ba", 16),
        weight("wb", 24, 16, 3, 3), weight("bb", 24),
        weight("wc", 16, 24, 1, 1), weight("bc", 16),
    ]  # fmt: skip
    conv = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["input", "wa", "ba"], ["a"], name="conv_a", **conv),
        helper.make_node("Relu", ["a"], ["ar"], name="relu_a"),
        helper.make_node("Softmax", ["ar"], ["s"], name="softmax", axis=1),
        helper.make_node("Conv", ["s", "wb", "bb"], ["b"], name="conv_b", **conv),
        helper.make_node("Relu", ["b"], ["br"], name="relu_b"),
        helper.make_node("Conv", ["br", "wc", "bc"], ["c"], name="conv_c"),
        helper.make_node("Add", ["c", "s"], ["output"], name="residual"),
    ]
    graph = helper.make_graph(
        nodes,
        "two_regions",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 16, 10, 10])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _optimized(model: onnx.ModelProto, regions: dict[str, str] | None) -> str:
    stages: dict[str, str] = {}

    def keep(stage: str, module: object) -> None:
        stages.setdefault(stage, str(module).split("{-#")[0])

    woodpecker.compile(model, options=CompileOptions(layout_regions=regions, on_stage=keep, libraries="none"))
    return stages["optimize"]


def test_layout_regions_lists_the_rules_regions() -> None:
    regions = layout_regions(two_region_net(), block=8)
    assert [r.name for r in regions] == ["conv_a", "conv_b"]
    assert [(c.name, c.in_channels, c.out_channels) for c in regions[1].convs] == [
        ("conv_b", 16, 24),
        ("conv_c", 24, 16),
    ]
    assert [(c.in_channels, c.out_channels) for c in regions[0].convs] == [(3, 16)]


@pytest.mark.parametrize(
    "regions",
    [None, {"conv_a": "nchw", "conv_b": "8"}, {"conv_a": "8", "conv_b": "nchw"}, {"conv_a": "16", "conv_b": "8"}],
)
def test_region_choices_match_onnxruntime(regions: dict[str, str] | None) -> None:
    model = two_region_net()
    feeds = {"input": np.random.default_rng(1).standard_normal((1, 3, 10, 10)).astype(np.float32)}
    got = woodpecker.compile(model, options=CompileOptions(layout_regions=regions)).run(None, feeds)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(got[0], want[0], rtol=RTOL, atol=ATOL)


def test_a_region_forced_nchw_keeps_its_convs_nchw() -> None:
    text = _optimized(two_region_net(), {"conv_a": "nchw", "conv_b": "8"})
    assert text.count('"wpk.blocked_conv2d"') == 2  # conv_b, conv_c
    assert text.count('"wpk.fused_conv2d"') == 1  # conv_a
    assert "x8xf32>" in text and "x16xf32>) ->" not in text


def test_an_unknown_region_is_one_error_naming_it() -> None:
    with pytest.raises(CompilationError, match=r"no region named 'conv_x' \(regions: conv_a, conv_b\)"):
        woodpecker.compile(two_region_net(), options=CompileOptions(layout_regions={"conv_x": "8"}))
