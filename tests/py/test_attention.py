"""wpk-fold-transpose and wpk.matmul_transposed: K^T read by the matmul instead of materialized.

Numerics against numpy float64 (small graphs) and ONNX Runtime (a BERT-style attention block),
at O0 (no folding: plain matmul of the transpose) and O2 (folded into wpk.matmul_transposed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mlir import ir
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker import passes
from woodpecker.frontend import optimize_graph
from woodpecker.graph import GraphContext
from woodpecker.importer.api import import_onnx_with_weights

F32 = TensorProto.FLOAT
RTOL = 1e-4
ATOL = 1e-5


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, Sequence[int]],
    outputs: dict[str, Sequence[int]],
    initializers: Sequence[onnx.TensorProto] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info(n, F32, list(s)) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, F32, list(s)) for n, s in outputs.items()],
        list(initializers),
    )
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    built.ir_version = 8
    return built


def ops_after_o2(proto: onnx.ModelProto) -> list[str]:
    imported = import_onnx_with_weights(proto)
    with imported.context, ir.Location.unknown():
        optimize_graph(imported.module, 2, GraphContext(imported.weights))
        fn = imported.module.body.operations[0]
        return [op.operation.name for op in fn.regions[0].blocks[0].operations]


def qk_model(q_shape: list[int], k_shape: list[int], perm: list[int]) -> onnx.ModelProto:
    kt_shape = [k_shape[p] for p in perm]
    out = [*np.broadcast_shapes(tuple(q_shape[:-2]), tuple(kt_shape[:-2])), q_shape[-2], kt_shape[-1]]
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=perm),
        helper.make_node("MatMul", ["q", "kt"], ["y"]),
    ]
    return model(nodes, {"q": q_shape, "k": k_shape}, {"y": out})


CASES = {
    "swap_4d": ([2, 3, 5, 4], [2, 3, 6, 4], [0, 1, 3, 2]),
    "heads_0231": ([2, 3, 5, 4], [2, 6, 3, 4], [0, 2, 3, 1]),
    "broadcast_batch": ([2, 3, 5, 4], [1, 3, 6, 4], [0, 1, 3, 2]),
    "shared_2d_rhs": ([2, 3, 5, 4], [6, 4], [1, 0]),
    "plain_2d": ([5, 4], [6, 4], [1, 0]),
    "batch_3d": ([3, 5, 4], [3, 6, 4], [0, 2, 1]),
    # Large enough for the default schedule to pack B into panels (read transposed).
    "packed_heads": ([1, 2, 64, 32], [1, 2, 96, 32], [0, 1, 3, 2]),
    "packed_shared_rhs": ([2, 64, 32], [96, 32], [1, 0]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("opt_level", [0, 2])
def test_transposed_rhs_matches_numpy(case: str, opt_level: int) -> None:
    q_shape, k_shape, perm = CASES[case]
    rng = np.random.default_rng(0)
    q = rng.standard_normal(q_shape).astype(np.float32)
    k = rng.standard_normal(k_shape).astype(np.float32)
    (got,) = woodpecker.compile(qk_model(q_shape, k_shape, perm), opt_level=opt_level).run(None, {"q": q, "k": k})
    expected = np.matmul(q.astype(np.float64), np.transpose(k.astype(np.float64), perm))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("case", "left"),
    [("swap_4d", []), ("heads_0231", [[0, 2, 1, 3]]), ("shared_2d_rhs", []), ("batch_3d", [])],
)
def test_fold_transpose_leaves_matmul_transposed(case: str, left: list[list[int]]) -> None:
    ops = ops_after_o2(qk_model(*CASES[case]))
    assert "wpk.matmul_transposed" in ops
    assert "wpk.matmul" not in ops and "wpk.fused_matmul" not in ops
    assert ops.count("wpk.transpose") == len(left)


def test_transpose_with_another_use_is_kept() -> None:
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["y"]),
        helper.make_node("Relu", ["kt"], ["z"]),
    ]
    proto = model(nodes, {"q": [2, 5, 4], "k": [2, 6, 4]}, {"y": [2, 5, 6], "z": [2, 4, 6]})
    ops = ops_after_o2(proto)
    assert "wpk.matmul_transposed" not in ops and "wpk.transpose" in ops


# ----------------------------------------------------------------------------
# A BERT-style self-attention block: batch 1, 12 heads, seq 128, head dim 64.

HIDDEN, HEADS, SEQ = 768, 12, 128
HEAD_DIM = HIDDEN // HEADS


def ints(name: str, values: Sequence[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def attention_block(seed: int = 0) -> onnx.ModelProto:
    """x [1, S, 768] -> Q/K/V (MatMul + Add) -> heads -> softmax(Q K^T / 8 + mask) V -> [1, S, 768]."""
    rng = np.random.default_rng(seed)
    inits = [ints("heads_shape", [1, SEQ, HEADS, HEAD_DIM]), ints("merged_shape", [1, SEQ, HIDDEN])]
    nodes = []
    for name in ("q", "k", "v"):
        w = (rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
        b = (0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w_{name}"), numpy_helper.from_array(b, f"b_{name}")]
        nodes += [
            helper.make_node("MatMul", ["x", f"w_{name}"], [f"{name}_mm"]),
            helper.make_node("Add", [f"{name}_mm", f"b_{name}"], [f"{name}_lin"]),
            helper.make_node("Reshape", [f"{name}_lin", "heads_shape"], [f"{name}_heads"]),
        ]
    inits.append(numpy_helper.from_array(np.array(np.sqrt(HEAD_DIM), dtype=np.float32), "scale"))
    nodes += [
        helper.make_node("Transpose", ["q_heads"], ["qh"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k_heads"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["v_heads"], ["vh"], perm=[0, 2, 1, 3]),
        helper.make_node("MatMul", ["qh", "kt"], ["scores"]),
        helper.make_node("Div", ["scores", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "vh"], ["context"]),
        helper.make_node("Transpose", ["context"], ["context_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["context_t", "merged_shape"], ["y"]),
    ]
    return model(nodes, {"x": [1, SEQ, HIDDEN], "mask": [1, 1, 1, SEQ]}, {"y": [1, SEQ, HIDDEN]}, inits)


def attention_feeds(seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((1, 1, 1, SEQ), dtype=np.float32)
    mask[..., SEQ - 16 :] = -10000.0  # padded positions
    return {"x": rng.standard_normal((1, SEQ, HIDDEN)).astype(np.float32), "mask": mask}


def test_attention_block_folds_k_transpose(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without wpk-fuse-attention, which makes the whole chain one wpk.attention (test_fuse_attention.py).
    o2 = passes.OPT_LEVEL_PIPELINES[2]
    monkeypatch.setitem(passes.OPT_LEVEL_PIPELINES, 2, o2.replace("wpk-fuse-attention,", ""))
    ops = ops_after_o2(attention_block())
    assert ops.count("wpk.matmul_transposed") == 1
    assert ops.count("wpk.transpose") == 4  # q, k (now [0, 2, 1, 3]), v heads and the merge


@pytest.mark.parametrize("opt_level", [0, 2])
def test_attention_block_matches_ort(opt_level: int) -> None:
    proto, feeds = attention_block(), attention_feeds()
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, feeds)
    (got,) = woodpecker.compile(proto, opt_level=opt_level).run(None, feeds)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
