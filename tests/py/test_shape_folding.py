"""Shape subgraphs fold at import; data-movement ops (Resize, Concat, Split, GatherElements) run.

* A transformer-style shape subgraph (Shape -> Slice/Gather -> Unsqueeze -> Concat -> Reshape,
  Range -> Expand -> GatherElements indices, ConstantOfShape mask) imports with no shape op left:
  only the run-time data ops remain in the IR, and the compiled model matches ONNX Runtime.
* A YOLO-style neck (Resize nearest x2 asymmetric, bilinear half_pixel and align_corners, Concat,
  Split) matches ONNX Runtime at O0 and O2 (rtol 1e-5, atol 1e-5: the same f32 arithmetic).
* An If on a constant condition inlines its taken branch; bad inputs get one error line naming
  the node.
* A float ConstantOfShape or Expand too large to fold (16 GiB) is left to run time as wpk.expand
  (the import stays under 1 GiB of memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from test_fold_budget import MAX_RSS_MIB
from test_fold_budget import _compile_in_subprocess as compile_in_subprocess
from test_fold_budget import _model as fold_budget_model

import woodpecker
from woodpecker.errors import ShapeError, UnsupportedOperatorError
from woodpecker.importer import SUPPORTED_OPS, import_onnx

F32, I64 = TensorProto.FLOAT, TensorProto.INT64
RNG = np.random.default_rng(7)
RTOL, ATOL = 1e-5, 1e-5


def ints(name: str, values: Sequence[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, Sequence[int]],
    outputs: dict[str, Sequence[int]],
    initializers: Sequence[onnx.TensorProto] = (),
    opset: int = 18,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info(n, F32, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, F32, list(s)) for n, s in outputs.items()],
        list(initializers),
    )
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    built.ir_version = 8
    return built


def wpk_op_names(proto: onnx.ModelProto) -> list[str]:
    module = import_onnx(proto)
    fn = module.body.operations[0]
    return [op.operation.name for op in fn.regions[0].blocks[0].operations]


def ort_run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check_against_ort(proto: onnx.ModelProto, feeds: dict[str, np.ndarray], opt_level: int) -> None:
    expected = ort_run(proto, feeds)
    got = woodpecker.compile(proto, opt_level=opt_level).run(None, feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------
# A transformer-style shape subgraph.


def _transformer_shape_graph(use_gather: bool) -> onnx.ModelProto:
    """x [2, 8, 16]: reshape to [b, s, 4, 4] from Shape; reverse the sequence through
    GatherElements with Range-built indices; scale attention scores by a ConstantOfShape mask."""
    if use_gather:
        pick = [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Gather", ["shape", "zero"], ["b0"], axis=0),
            helper.make_node("Gather", ["shape", "one"], ["s0"], axis=0),
            helper.make_node("Unsqueeze", ["b0", "axis0"], ["b"]),
            helper.make_node("Unsqueeze", ["s0", "axis0"], ["s"]),
        ]
    else:
        pick = [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Slice", ["shape", "start0", "end1"], ["b"]),
            helper.make_node("Shape", ["x"], ["s"], start=1, end=2),
        ]
    nodes = [
        *pick,
        helper.make_node("Concat", ["b", "s", "four", "four"], ["new_shape"], axis=0),
        helper.make_node("Reshape", ["x", "new_shape"], ["heads"]),
        # positions s-1 ... 0 -> [1, s, 1] -> expanded to x's shape -> x reversed along the sequence
        helper.make_node("Squeeze", ["s", "axis0"], ["s_scalar"]),
        helper.make_node("Sub", ["s_scalar", "one_scalar"], ["last"]),
        helper.make_node("Range", ["last", "minus_one", "minus_one"], ["positions"]),
        helper.make_node("Unsqueeze", ["positions", "axes02"], ["positions3"]),
        helper.make_node("Shape", ["x"], ["x_shape"]),
        helper.make_node("Expand", ["positions3", "x_shape"], ["indices"]),
        helper.make_node("GatherElements", ["x", "indices"], ["reversed"], axis=1),
        # scores [2, s, s] scaled by a ConstantOfShape([s, s]) mask of 0.5
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "xt"], ["scores"]),
        helper.make_node("Concat", ["s", "s"], ["mask_shape"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["mask_shape"],
            ["mask"],
            value=numpy_helper.from_array(np.asarray([0.5], dtype=np.float32)),
        ),
        helper.make_node("Mul", ["scores", "mask"], ["masked"]),
    ]
    initializers = [
        ints("start0", [0]),
        ints("end1", [1]),
        ints("zero", 0),
        ints("one", 1),
        ints("axis0", [0]),
        ints("four", [4]),
        ints("one_scalar", 1),
        ints("minus_one", -1),
        ints("axes02", [0, 2]),
    ]
    return model(
        nodes, {"x": [2, 8, 16]}, {"heads": [2, 8, 4, 4], "reversed": [2, 8, 16], "masked": [2, 8, 8]}, initializers
    )


@pytest.mark.parametrize("use_gather", [False, True], ids=["shape-slice", "shape-gather"])
def test_transformer_shape_subgraph_folds(use_gather: bool) -> None:
    if use_gather and "Gather" not in SUPPORTED_OPS:
        pytest.skip("Gather has no converter on this branch (it is the dtype family's)")
    proto = _transformer_shape_graph(use_gather)
    names = wpk_op_names(proto)
    runtime = {"wpk.reshape", "wpk.gather_elements", "wpk.transpose", "wpk.matmul", "wpk.mul"}
    data = {"wpk.weight", "wpk.constant", "func.return"}
    assert set(names) <= runtime | data, names
    assert runtime <= set(names), names
    assert names.count("wpk.reshape") == 1


@pytest.mark.parametrize("opt_level", [0, 2])
def test_transformer_shape_subgraph_matches_ort(opt_level: int) -> None:
    x = RNG.standard_normal((2, 8, 16)).astype(np.float32)
    check_against_ort(_transformer_shape_graph(False), {"x": x}, opt_level)


def test_folded_shape_arithmetic_leaves_no_op() -> None:
    """Shape, Size, Mod, Tile, Expand, Slice (negative step), Split and Range on constants fold:
    the Reshape target is computed at import and only the reshape remains."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),  # [4, 6]
        helper.make_node("Size", ["x"], ["size"]),  # 24
        helper.make_node("Mod", ["size", "five"], ["four"]),  # 24 mod 5 = 4
        helper.make_node("Unsqueeze", ["four", "axis0"], ["four1"]),
        helper.make_node("Tile", ["four1", "two"], ["fours"]),  # [4, 4]
        helper.make_node("Slice", ["shape", "minus1", "minus3", "zero1", "minus1"], ["rev"]),  # [6, 4]
        helper.make_node("Split", ["rev"], ["six", "four_b"], num_outputs=2),
        helper.make_node("Range", ["zero", "four", "two_scalar"], ["evens"]),  # [0, 2]
        helper.make_node("Size", ["evens"], ["two_again"]),
        helper.make_node("Mul", ["six", "four_b"], ["twenty_four"]),
        helper.make_node("Div", ["twenty_four", "fours"], ["sixes"]),  # [6, 6]
        helper.make_node("Slice", ["sixes", "zero1", "one1"], ["six1"]),
        helper.make_node("Div", ["six1", "two_again"], ["three"]),  # [3]
        helper.make_node("Concat", ["three", "minus1"], ["target"], axis=0),  # [3, -1]
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    initializers = [
        ints("five", 5),
        ints("axis0", [0]),
        ints("two", [2]),
        ints("minus1", [-1]),
        ints("minus3", [-3]),
        ints("zero1", [0]),
        ints("one1", [1]),
        ints("zero", 0),
        ints("two_scalar", 2),
    ]
    proto = model(nodes, {"x": [4, 6]}, {"y": [3, 8]}, initializers)
    assert wpk_op_names(proto) == ["wpk.reshape", "func.return"]
    x = RNG.standard_normal((4, 6)).astype(np.float32)
    (got,) = woodpecker.compile(proto, opt_level=0).run(None, {"x": x})
    np.testing.assert_array_equal(got, x.reshape(3, 8))


# ----------------------------------------------------------------------------
# A YOLO-style neck: upsampling, concatenation, split.


def _resize(name: str, source: str, mode: str, coordinates: str, **extra: str) -> onnx.NodeProto:
    return helper.make_node(
        "Resize",
        [source, "", "scales"],
        [name],
        mode=mode,
        coordinate_transformation_mode=coordinates,
        **extra,
    )


def _neck() -> onnx.ModelProto:
    nodes = [
        # YOLOv8: nearest x2, asymmetric, floor
        _resize("up", "p5", "nearest", "asymmetric", nearest_mode="floor"),
        helper.make_node("Concat", ["up", "p4"], ["cat"], axis=1),
        helper.make_node("Split", ["cat", "split"], ["a", "b"], axis=1),
        helper.make_node("Relu", ["b"], ["b_relu"]),
        # DBNet-style bilinear upsampling, half_pixel and align_corners (sizes)
        _resize("bilinear", "p5", "linear", "half_pixel"),
        helper.make_node(
            "Resize",
            ["p5", "", "", "sizes"],
            ["aligned"],
            mode="linear",
            coordinate_transformation_mode="align_corners",
        ),
        helper.make_node("Add", ["bilinear", "aligned"], ["fused"]),
        helper.make_node("Concat", ["fused", "a"], ["neck"], axis=1),
    ]
    initializers = [
        numpy_helper.from_array(np.asarray([1, 1, 2, 2], dtype=np.float32), "scales"),
        ints("sizes", [1, 4, 16, 16]),
        ints("split", [4, 2]),
    ]
    return model(
        nodes,
        {"p5": [1, 4, 8, 8], "p4": [1, 2, 16, 16]},
        {"neck": [1, 6, 16, 16], "b_relu": [1, 2, 16, 16]},
        initializers,
    )


@pytest.mark.parametrize("opt_level", [0, 2])
def test_yolo_style_neck_matches_ort(opt_level: int) -> None:
    feeds = {
        "p5": RNG.standard_normal((1, 4, 8, 8)).astype(np.float32),
        "p4": RNG.standard_normal((1, 2, 16, 16)).astype(np.float32),
    }
    check_against_ort(_neck(), feeds, opt_level)


@pytest.mark.parametrize(
    ("mode", "coordinates", "nearest_mode"),
    [
        ("nearest", "asymmetric", "floor"),
        ("nearest", "half_pixel", "round_prefer_floor"),
        ("nearest", "align_corners", "round_prefer_ceil"),
        ("nearest", "pytorch_half_pixel", "ceil"),
        ("linear", "half_pixel", "round_prefer_floor"),
        ("linear", "pytorch_half_pixel", "round_prefer_floor"),
        ("linear", "asymmetric", "round_prefer_floor"),
        ("linear", "align_corners", "round_prefer_floor"),
    ],
)
@pytest.mark.parametrize("scales", [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 0.5, 1.5]], ids=["x2", "down-up"])
def test_resize_modes_match_ort(mode: str, coordinates: str, nearest_mode: str, scales: list[float]) -> None:
    node = helper.make_node(
        "Resize",
        ["x", "", "scales"],
        ["y"],
        mode=mode,
        coordinate_transformation_mode=coordinates,
        nearest_mode=nearest_mode,
    )
    scale_init = numpy_helper.from_array(np.asarray(scales, dtype=np.float32), "scales")
    out = [1, 2, int(6 * scales[2]), int(6 * scales[3])]
    proto = model([node], {"x": [1, 2, 6, 6]}, {"y": out}, [scale_init])
    check_against_ort(proto, {"x": RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)}, 0)


# ----------------------------------------------------------------------------
# If, and errors.


def _branch(name: str, op_type: str) -> onnx.GraphProto:
    return helper.make_graph(
        [helper.make_node(op_type, ["x"], [f"{name}_out"])],
        name,
        [],
        [helper.make_tensor_value_info(f"{name}_out", F32, [2, 3])],
    )


@pytest.mark.parametrize(("condition", "expected"), [(True, "wpk.relu"), (False, "wpk.sigmoid")])
def test_if_on_a_constant_condition_inlines_the_taken_branch(condition: bool, expected: str) -> None:
    cond = numpy_helper.from_array(np.asarray(condition), "cond")
    node = helper.make_node(
        "If", ["cond"], ["y"], then_branch=_branch("then", "Relu"), else_branch=_branch("else", "Sigmoid")
    )
    proto = model([node], {"x": [2, 3]}, {"y": [2, 3]}, [cond])
    assert wpk_op_names(proto) == [expected, "func.return"]
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    check_against_ort(proto, {"x": x}, 0)


def test_unsupported_resize_mode_is_one_error_naming_the_node() -> None:
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="cubic")
    scale_init = numpy_helper.from_array(np.asarray([1, 1, 2, 2], dtype=np.float32), "scales")
    proto = model([node], {"x": [1, 1, 4, 4]}, {"y": [1, 1, 8, 8]}, [scale_init])
    with pytest.raises(UnsupportedOperatorError, match=r"node 'up' \(op Resize\): mode 'cubic' is not supported"):
        import_onnx(proto)


def test_empty_slice_is_one_error_naming_the_node() -> None:
    node = helper.make_node("Slice", ["x", "starts", "ends"], ["y"], name="cut")
    proto = model([node], {"x": [4, 4]}, {"y": [0, 4]}, [ints("starts", [5]), ints("ends", [9])])
    with pytest.raises(ShapeError, match=r"node 'cut' \(op Slice\): the result shape \[0, 4\] is empty"):
        import_onnx(proto)


# ----------------------------------------------------------------------------
# Folds over the budget are left to run time (as in test_fold_budget.py).


def _huge_constant_of_shape() -> onnx.ModelProto:
    """A 65536x65536 f32 ConstantOfShape (16 GiB): a wpk.expand of its one value."""
    node = helper.make_node(
        "ConstantOfShape",
        ["shape"],
        ["c"],
        name="huge_fill",
        value=numpy_helper.from_array(np.asarray([2.0], dtype=np.float32)),
    )
    return fold_budget_model([node], [ints("shape", [65536, 65536])])


def _huge_expand() -> onnx.ModelProto:
    """A [1, 1] f32 constant expanded to 65536x65536."""
    node = helper.make_node("Expand", ["one", "shape"], ["c"], name="huge_expand")
    one = numpy_helper.from_array(np.ones((1, 1), np.float32), "one")
    return fold_budget_model([node], [one, ints("shape", [65536, 65536])])


@pytest.mark.parametrize("make", [_huge_constant_of_shape, _huge_expand], ids=["constant-of-shape", "expand"])
def test_huge_shape_fold_is_left_to_run_time(make: Callable[[], onnx.ModelProto], tmp_path: Path) -> None:
    report = compile_in_subprocess(make(), tmp_path)
    assert "wpk.expand" in report["optimized_ops"], report
    assert report["max_rss_mib"] < MAX_RSS_MIB, report
    assert report["refused"] and "activation memory" in report["refused"], report


@pytest.mark.parametrize("fmod", [0, 1])
def test_folded_float_mod_matches_the_onnx_reference(fmod: int) -> None:
    a = np.asarray([-4.5, 7.25, 5.0, -3.0], np.float32)
    b = np.asarray([3.0, -3.0, 2.5, 2.0], np.float32)
    nodes = [helper.make_node("Mod", ["a", "b"], ["m"], fmod=fmod), helper.make_node("Add", ["x", "m"], ["y"])]
    inits = [numpy_helper.from_array(a, "a"), numpy_helper.from_array(b, "b")]
    proto = model(nodes, {"x": [4]}, {"y": [4]}, inits)
    assert wpk_op_names(proto)[-2:] == ["wpk.add", "func.return"]
    x = np.zeros(4, np.float32)
    (got,) = woodpecker.compile(proto, opt_level=0).run(None, {"x": x})
    (expected,) = ReferenceEvaluator(proto).run(None, {"x": x})
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("fmod", [0, 1])
def test_folded_integer_mod_matches_the_onnx_reference(fmod: int) -> None:
    """Mod of int64 constants read as Tile repeats: the result's shape shows the folded values
    (fmod=0: [2, -2] + 2, 3 = [4, 1]; fmod=1: [-1, 1] + 2, 3 = [1, 4])."""
    a, b, offset = (np.asarray(v, np.int64) for v in ([-4, 7], [3, -3], [2, 3]))
    nodes = [
        helper.make_node("Mod", ["a", "b"], ["m"], fmod=fmod),
        helper.make_node("Add", ["m", "offset"], ["repeats"]),
        helper.make_node("Tile", ["x", "repeats"], ["y"]),
    ]
    inits = [numpy_helper.from_array(v, n) for n, v in (("a", a), ("b", b), ("offset", offset))]
    repeats = [4, 1] if fmod == 0 else [1, 4]
    proto = model(nodes, {"x": [2, 3]}, {"y": [2 * repeats[0], 3 * repeats[1]]}, inits)
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    (expected,) = ReferenceEvaluator(proto).run(None, {"x": x})
    (got,) = woodpecker.compile(proto, opt_level=0).run(None, {"x": x})
    assert got.shape == expected.shape == (2 * repeats[0], 3 * repeats[1])
    np.testing.assert_array_equal(got, expected)


def test_inlined_branch_reads_outer_values_and_its_own_initializers() -> None:
    """The taken branch folds its own shape arithmetic (Shape of an outer value, a branch
    initializer) and computes on the outer run-time tensor."""
    branch = helper.make_graph(
        [
            helper.make_node("Shape", ["x"], ["x_shape"]),
            helper.make_node("Slice", ["x_shape", "zero", "one"], ["rows"]),
            helper.make_node("Concat", ["rows", "minus_one"], ["target"], axis=0),
            helper.make_node("Reshape", ["x", "target"], ["flat"]),
            helper.make_node("Mul", ["flat", "half"], ["then_out"]),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", F32, [2, 12])],
        [ints("zero", [0]), ints("one", [1]), numpy_helper.from_array(np.asarray(0.5, np.float32), "half")],
    )
    other = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["else_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", F32, [2, 12])],
    )
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other)
    proto = model(
        [node],
        {"x": [2, 3, 4]},
        {"y": [2, 12]},
        [numpy_helper.from_array(np.asarray(True), "cond"), ints("minus_one", [-1])],
    )
    assert wpk_op_names(proto) == ["wpk.reshape", "wpk.constant", "wpk.mul", "func.return"]
    check_against_ort(proto, {"x": RNG.standard_normal((2, 3, 4)).astype(np.float32)}, 2)
