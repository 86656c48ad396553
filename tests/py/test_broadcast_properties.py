"""Property test: ONNX binary ops with numpy broadcasting, on random shapes, against numpy in float64.

Each example compiles a fresh model, so the example count is kept small.
"""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import woodpecker

RTOL, ATOL = 1e-5, 1e-6
NUMPY_OPS = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


@st.composite
def broadcast_pair(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """Two shapes that broadcast: each dim of the shorter one is the other's dim or 1."""
    full = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    rank = draw(st.integers(1, len(full)))
    other = [d if draw(st.booleans()) else 1 for d in full[len(full) - rank :]]
    return (full, other) if draw(st.booleans()) else (other, full)


def _model(op: str, a: list[int], b: list[int], out: list[int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"], name=f"{op.lower()}_0")],
        "broadcast",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, a),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, b)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=broadcast_pair(), op=st.sampled_from(sorted(NUMPY_OPS)), seed=st.integers(0, 2**16))
def test_binary_broadcasting_matches_numpy(shapes: tuple[list[int], list[int]], op: str, seed: int) -> None:
    a_shape, b_shape = shapes
    out_shape = list(np.broadcast_shapes(tuple(a_shape), tuple(b_shape)))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.uniform(0.5, 2.0, b_shape).astype(np.float32) * rng.choice([-1, 1], b_shape).astype(np.float32)
    compiled = woodpecker.compile(_model(op, a_shape, b_shape, out_shape))
    (got,) = compiled.run(None, {"a": a, "b": b})
    expected = NUMPY_OPS[op](a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
