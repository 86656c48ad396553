"""Lowering of the data-movement ops (slice, expand, gather_elements, resize): each op built
directly, lowered, JIT-run and compared with an independent reference (numpy indexing, or the
ONNX reference implementation of Resize; ONNX Runtime for Resize-11's tf_half_pixel_for_nn),
rtol 1e-4 / atol 1e-5 as in test_lowering.py."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from mlir import ir
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from test_lowering import check, lower_and_run, rand, run_op

from woodpecker.dialect import create_op, str_attr, tensor_type
from woodpecker.errors import CompilationError

SLICE_CASES = [
    # (input shape, per-dimension python slices)
    ((4, 6), (slice(3, None, -2), slice(0, 6, 2))),
    ((4, 6), (slice(1, 3, 1), slice(5, None, -1))),
    ((2, 3, 5), (slice(0, 2, 1), slice(2, 3, 1), slice(4, 0, -3))),
    ((5,), (slice(1, 5, 3),)),
]


@pytest.mark.parametrize(("shape", "slices"), SLICE_CASES, ids=[str(c[1]) for c in SLICE_CASES])
def test_slice(shape: tuple[int, ...], slices: tuple[slice, ...]) -> None:
    x = rand(*shape)
    expected = x[slices]
    starts = [s.start for s in slices]
    steps = [s.step for s in slices]
    lowered = run_op("slice", [x], expected.shape, {"starts": starts, "steps": steps})
    if all(t > 0 for t in steps):
        assert "tensor.extract_slice" in lowered.ir_text and "tensor.extract " not in lowered.ir_text
    check(lowered.outputs[0], expected)


@pytest.mark.parametrize(("shape", "out"), [((3, 1), (2, 3, 4)), ((1,), (5,)), ((2, 1, 3), (2, 4, 3))])
def test_expand(shape: tuple[int, ...], out: tuple[int, ...]) -> None:
    x = rand(*shape)
    check(run_op("expand", [x], out).outputs[0], np.broadcast_to(x, out))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather_elements(axis: int) -> None:
    x = rand(3, 4, 5)
    out = [2, 3, 4]
    indices = np.random.default_rng(axis).integers(0, x.shape[axis], size=out)
    grid = list(np.indices(out, sparse=True))
    grid[axis] = indices
    expected = x[tuple(grid)]
    lowered = run_op("gather_elements", [x], out, {"indices": [int(i) for i in indices.reshape(-1)], "axis": axis})
    check(lowered.outputs[0], expected)


def _onnx_resize(x: np.ndarray, scales: list[float], mode: str, coordinates: str, nearest_mode: str) -> np.ndarray:
    node = helper.make_node(
        "Resize",
        ["x", "roi", "scales"],
        ["y"],
        mode=mode,
        coordinate_transformation_mode=coordinates,
        nearest_mode=nearest_mode,
    )
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(np.asarray(scales, dtype=np.float32), "scales"),
            numpy_helper.from_array(np.zeros(0, dtype=np.float32), "roi"),
        ],
    )
    if coordinates == "tf_half_pixel_for_nn":  # Resize-11 only: not in the ONNX reference, ask ONNX Runtime
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


RESIZE_CASES = [
    ("nearest", "asymmetric", "floor", [1.0, 1.0, 2.0, 2.0]),  # an affine copy (d floordiv 2)
    ("nearest", "asymmetric", "floor", [1.0, 1.0, 0.5, 0.5]),  # an affine copy (d * 2)
    ("nearest", "asymmetric", "floor", [1.0, 1.0, 0.25, 3.0]),  # 4 -> 1 rows: the index tables
    ("nearest", "half_pixel", "round_prefer_ceil", [1.0, 1.0, 1.5, 0.5]),
    ("nearest", "tf_half_pixel_for_nn", "ceil", [1.0, 1.0, 3.0, 2.0]),
    ("linear", "half_pixel", "round_prefer_floor", [1.0, 1.0, 2.0, 2.0]),
    ("linear", "align_corners", "round_prefer_floor", [1.0, 1.0, 2.0, 0.5]),
    ("linear", "pytorch_half_pixel", "round_prefer_floor", [1.0, 2.0, 1.5, 1.0]),
    ("linear", "half_pixel_symmetric", "round_prefer_floor", [1.0, 1.0, 0.6, 1.7]),
]


@pytest.mark.parametrize(("mode", "coordinates", "nearest_mode", "scales"), RESIZE_CASES, ids=str)
def test_resize(mode: str, coordinates: str, nearest_mode: str, scales: list[float]) -> None:
    x = rand(1, 2, 4, 6)
    expected = _onnx_resize(x, scales, mode, coordinates, nearest_mode)

    def build(args: list[ir.Value]) -> list[ir.Value]:
        attrs = {
            "scales": ir.DenseF32ArrayAttr.get(scales),
            "mode": str_attr(mode),
            "coordinate_transformation_mode": str_attr(coordinates),
            "nearest_mode": str_attr(nearest_mode),
        }
        return [create_op("resize", args, [tensor_type(expected.shape)], attrs).result]

    lowered = lower_and_run([x], [expected.shape], build)
    check(lowered.outputs[0], expected)


def test_slice_outside_the_input_is_a_lowering_error() -> None:

    with pytest.raises(CompilationError, match=r"leave the input size 4"):
        run_op("slice", [rand(4)], [3], {"starts": [2], "steps": [1]})
