"""wpk-fuse-layernorm: the decomposed LayerNorm that older exporters emit (ReduceMean -> Sub ->
Pow 2 -> ReduceMean -> Add eps -> Sqrt -> Div -> Mul -> Add) compiles at -O2 to one
wpk.layer_norm, with the numerics of numpy float64 (rtol 1e-4, atol 1e-4); variants that are
not a LayerNorm are left alone.

The pattern needs the Pow and Sqrt converters (the elementwise family, branch wt-ew): until they
are in SUPPORTED_OPS these tests skip, saying so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import pytest
from mlir import ir
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.compiler import CompileOptions
from woodpecker.importer import SUPPORTED_OPS

pytestmark = pytest.mark.skipif(
    not {"Pow", "Sqrt"} <= set(SUPPORTED_OPS),
    reason="the decomposed LayerNorm needs the Pow and Sqrt converters (elementwise family, wt-ew)",
)

SHAPE = (2, 5, 64)


def decomposed(
    axes: Sequence[int] = (-1,), scale: bool = True, bias: bool = True, square: str = "Pow", opset: int = 17
) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    hidden = SHAPE[-1]
    inits = {"two": np.array(2.0, np.float32), "eps": np.array(1e-5, np.float32)}
    mean_args = {"axes": list(axes), "keepdims": 1}
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], name="mean", **mean_args),
        helper.make_node("Sub", ["x", "m"], ["d"], name="sub"),
        helper.make_node("Pow", ["d", "two"], ["q"], name="pow")
        if square == "Pow"
        else helper.make_node("Mul", ["d", "d"], ["q"], name="sq"),
        helper.make_node("ReduceMean", ["q"], ["v"], name="var", **mean_args),
        helper.make_node("Add", ["v", "eps"], ["ve"], name="add_eps"),
        helper.make_node("Sqrt", ["ve"], ["s"], name="sqrt"),
        helper.make_node("Div", ["d", "s"], ["n"], name="div"),
    ]
    out = "n"
    if scale:
        inits["gamma"] = rng.standard_normal(hidden).astype(np.float32)
        nodes.append(helper.make_node("Mul", [out, "gamma"], ["g"], name="mul_gamma"))
        out = "g"
    if bias:
        inits["beta"] = rng.standard_normal(hidden).astype(np.float32)
        nodes.append(helper.make_node("Add", [out, "beta"], ["b"], name="add_beta"))
        out = "b"
    nodes.append(helper.make_node("Identity", [out], ["y"]))
    graph = helper.make_graph(
        nodes,
        "ln",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(SHAPE))],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def reference(model: onnx.ModelProto, x: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    x64 = x.astype(np.float64)
    a = tuple(axes)
    d = x64 - x64.mean(axis=a, keepdims=True)
    y = d / np.sqrt((d * d).mean(axis=a, keepdims=True) + 1e-5)
    return y * inits.get("gamma", 1.0) + inits.get("beta", 0.0)


def compile_o2(model: onnx.ModelProto) -> tuple[woodpecker.CompiledModel, list[str]]:
    """The compiled model and the kernels (wpk op names, data ops left out) of its optimized graph."""
    seen: list[str] = []

    def on_stage(stage: str, module: ir.Module) -> None:
        if stage == "optimize":
            body = module.body.operations[0].regions[0].blocks[0].operations
            seen.extend(op.operation.name for op in body)

    compiled = woodpecker.compile(model, options=CompileOptions(opt_level=2, on_stage=on_stage))
    return compiled, [n for n in seen if n.startswith("wpk.") and n not in ("wpk.weight", "wpk.constant")]


@pytest.mark.parametrize(
    ("axes", "scale", "bias", "square"),
    [((-1,), True, True, "Pow"), ((-1,), True, True, "Mul"), ((-1,), True, False, "Pow"),
     ((-1,), False, False, "Pow"), ((1, 2), True, True, "Pow")],
)  # fmt: skip
def test_decomposed_layer_norm_is_one_kernel(axes: tuple[int, ...], scale: bool, bias: bool, square: str) -> None:
    model = decomposed(axes, scale, bias, square)
    x = (np.random.default_rng(1).standard_normal(SHAPE) * 2 + 0.5).astype(np.float32)
    compiled, kernels = compile_o2(model)
    assert kernels == ["wpk.layer_norm"], kernels
    (got,) = compiled.run(None, {"x": x})
    np.testing.assert_allclose(got, reference(model, x, axes), rtol=1e-4, atol=1e-4)


def test_not_a_layer_norm_is_left_alone() -> None:
    """The variance over other axes than the mean: no layer_norm, same numerics."""
    model = decomposed((-1,))
    model.graph.node[3].attribute[0].ints[:] = [1]  # var over axis 1, mean over axis -1
    x = np.random.default_rng(2).standard_normal(SHAPE).astype(np.float32)
    compiled, kernels = compile_o2(model)
    assert "wpk.layer_norm" not in kernels and "wpk.reduce_mean" in kernels
    (got,) = compiled.run(None, {"x": x})
    x64 = x.astype(np.float64)
    d = x64 - x64.mean(axis=-1, keepdims=True)
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    want = d / np.sqrt((d * d).mean(axis=1, keepdims=True) + 1e-5) * inits["gamma"] + inits["beta"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
