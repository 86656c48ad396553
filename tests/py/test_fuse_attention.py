"""wpk-fuse-attention and wpk.attention: softmax(scale * q k^T + mask) v as one op.

Numerics of a synthetic BERT-style attention block (batch 1, 12 heads, seq 128, head dim 64)
against numpy float64 (rtol 1e-4) and ONNX Runtime (relative L2 <= 1e-5) at O0 (unfused) and O2
(one wpk.attention), for the scale and mask forms exporters emit; small graphs for the mask
broadcasts (batch 2) and the chains that must stay unfused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_attention import HEAD_DIM, HEADS, HIDDEN, SEQ, ints, model, ops_after_o2

import woodpecker
from woodpecker.ops.args import OpArgs, ShapeRuleError
from woodpecker.ops.attention import attention_shape, evaluate_attention

RTOL = 1e-4
ATOL = 1e-5
REL_L2 = 1e-5

# How the scores are scaled: Div by sqrt(d), Mul by 1/sqrt(d), or d^-1/4 on q and on k.
SCALES = ("div", "mul", "qk")
# The mask: none, run-time [1, 1, 1, S] (BERT's padding mask), run-time [1, 1, S, S], constant [S, S].
MASKS = ("none", "b11s", "b1ss", "const_ss")


def mask_shape(mask: str) -> list[int]:
    return {"b11s": [1, 1, 1, SEQ], "b1ss": [1, 1, SEQ, SEQ], "const_ss": [SEQ, SEQ]}[mask]


def causal(shape: Sequence[int]) -> np.ndarray:
    """0 on and below the diagonal, -10000 above (of the trailing [S, S])."""
    rows = np.arange(SEQ)
    return np.broadcast_to(np.where(rows[None, :] > rows[:, None], -10000.0, 0.0), shape).astype(np.float32)


def bert_block(scale: str, mask: str, seed: int = 0) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """x [1, S, 768] -> Q/K/V (MatMul + Add) -> heads -> softmax(scaled Q K^T [+ mask]) V -> [1, S, 768];
    the weights as initializers (in the returned dict too, for the numpy reference)."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for name in ("q", "k", "v"):
        arrays[f"w_{name}"] = (rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32)
        arrays[f"b_{name}"] = (0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
        nodes += [
            helper.make_node("MatMul", ["x", f"w_{name}"], [f"{name}_mm"]),
            helper.make_node("Add", [f"{name}_mm", f"b_{name}"], [f"{name}_lin"]),
            helper.make_node("Reshape", [f"{name}_lin", "heads_shape"], [f"{name}_heads"]),
        ]
    nodes += [
        helper.make_node("Transpose", ["q_heads"], ["qh"], perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["k_heads"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["v_heads"], ["vh"], perm=[0, 2, 1, 3]),
    ]
    q, kt = "qh", "kt"
    if scale == "qk":
        arrays["quarter"] = np.array([HEAD_DIM**-0.25], dtype=np.float32)
        nodes += [
            helper.make_node("Mul", ["qh", "quarter"], ["qs"]),
            helper.make_node("Mul", ["quarter", "kt"], ["ks"]),
        ]
        q, kt = "qs", "ks"
    nodes.append(helper.make_node("MatMul", [q, kt], ["scores"]))
    scaled = "scores"
    if scale == "div":
        arrays["sqrt_d"] = np.array(np.sqrt(HEAD_DIM), dtype=np.float32)
        nodes.append(helper.make_node("Div", ["scores", "sqrt_d"], ["scaled"]))
        scaled = "scaled"
    elif scale == "mul":
        arrays["inv_sqrt_d"] = np.array(1.0 / np.sqrt(HEAD_DIM), dtype=np.float32)
        nodes.append(helper.make_node("Mul", ["inv_sqrt_d", "scores"], ["scaled"]))
        scaled = "scaled"
    inputs = {"x": [1, SEQ, HIDDEN]}
    rng_in = np.random.default_rng(seed + 1)
    feeds = {"x": rng_in.standard_normal((1, SEQ, HIDDEN)).astype(np.float32)}
    if mask != "none":
        if mask == "const_ss":
            arrays["mask"] = causal([SEQ, SEQ])
        else:
            inputs["mask"] = mask_shape(mask)
            m = np.zeros(mask_shape(mask), dtype=np.float32)
            m[..., SEQ - 16 :] = -10000.0  # padded positions
            feeds["mask"] = m if mask == "b11s" else m + causal(mask_shape(mask))
        nodes.append(helper.make_node("Add", [scaled, "mask"], ["masked"]))
        scaled = "masked"
    nodes += [
        helper.make_node("Softmax", [scaled], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "vh"], ["context"]),
        helper.make_node("Transpose", ["context"], ["context_t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["context_t", "merged_shape"], ["y"]),
    ]
    inits = [ints("heads_shape", [1, SEQ, HEADS, HEAD_DIM]), ints("merged_shape", [1, SEQ, HIDDEN])]
    inits += [numpy_helper.from_array(a, n) for n, a in arrays.items()]
    proto = model(nodes, inputs, {"y": [1, SEQ, HIDDEN]}, inits)
    return proto, {**feeds, **{n: a for n, a in arrays.items() if n == "mask"}}


def block_reference(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The block in numpy float64, from the initializers of `proto`."""
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in proto.graph.initializer}
    x = feeds["x"].astype(np.float64)

    def heads(name: str) -> np.ndarray:
        lin = x @ w[f"w_{name}"] + w[f"b_{name}"]
        return lin.reshape(1, SEQ, HEADS, HEAD_DIM).transpose(0, 2, 1, 3)

    scores = heads("q") @ np.swapaxes(heads("k"), -1, -2) / np.sqrt(HEAD_DIM)
    if "mask" in feeds:
        scores = scores + feeds["mask"].astype(np.float64)
    exps = np.exp(scores - scores.max(axis=-1, keepdims=True))
    context = (exps / exps.sum(axis=-1, keepdims=True)) @ heads("v")
    return context.transpose(0, 2, 1, 3).reshape(1, SEQ, HIDDEN)


def run_feeds(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The feeds of the graph's inputs (a constant mask is an initializer, not a feed)."""
    names = {i.name for i in proto.graph.input}
    return {n: a for n, a in feeds.items() if n in names}


def rel_l2(got: np.ndarray, expected: np.ndarray) -> float:
    expected = expected.astype(np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - expected) / np.linalg.norm(expected))


@pytest.mark.parametrize(("scale", "mask"), [("div", "b11s"), ("mul", "none"), ("qk", "const_ss"), ("div", "b1ss")])
def test_bert_block_fuses_to_one_attention(scale: str, mask: str) -> None:
    ops = ops_after_o2(bert_block(scale, mask)[0])
    assert ops.count("wpk.attention") == 1
    for gone in ("wpk.softmax", "wpk.matmul_transposed", "wpk.matmul", "wpk.div", "wpk.mul", "wpk.add"):
        assert gone not in ops


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize(("scale", "mask"), [("div", "b11s"), ("mul", "none"), ("qk", "const_ss"), ("div", "b1ss")])
def test_bert_block_matches_numpy_and_ort(scale: str, mask: str, opt_level: int) -> None:
    proto, feeds = bert_block(scale, mask)
    feeds_in = run_feeds(proto, feeds)
    expected = block_reference(proto, feeds)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (from_ort,) = session.run(None, feeds_in)
    (got,) = woodpecker.compile(proto, opt_level=opt_level).run(None, feeds_in)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    assert rel_l2(got, from_ort) <= REL_L2


# ----------------------------------------------------------------------------
# Small graphs on q, k, v inputs: mask broadcasts and the chains that stay.

B, H, S, T, D, E = 2, 3, 5, 7, 4, 6
F32 = TensorProto.FLOAT


def qkv_graph(
    mask_dims: Sequence[int] | None, extra_outputs: Sequence[str] = (), where_mask: bool = False
) -> onnx.ModelProto:
    """softmax(Q K^T / 2 [+ mask]) V on q [B, H, S, D], k [B, H, T, D], v [B, H, T, E]."""
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Div", ["scores", "two"], ["scaled"]),
    ]
    inputs = {"q": [B, H, S, D], "k": [B, H, T, D], "v": [B, H, T, E]}
    last = "scaled"
    if mask_dims is not None:
        inputs["mask"] = list(mask_dims)
        if where_mask:  # GPT-2's causal form: Where(bool mask, scores, -big)
            nodes += [
                helper.make_node("Cast", ["mask"], ["keep"], to=TensorProto.BOOL),
                helper.make_node("Where", ["keep", "scaled", "neg"], ["masked"]),
            ]
        else:
            nodes.append(helper.make_node("Add", ["scaled", "mask"], ["masked"]))
        last = "masked"
    nodes += [
        helper.make_node("Softmax", [last], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["y"]),
    ]
    outputs = {"y": [B, H, S, E], **{name: [B, H, S, T] for name in extra_outputs}}
    inits = [
        numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
        numpy_helper.from_array(np.array(-1e4, dtype=np.float32), "neg"),
    ]
    return model(nodes, inputs, outputs, inits)


def qkv_feeds(mask_dims: Sequence[int] | None, binary: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in (("q", [B, H, S, D]), ("k", [B, H, T, D]))}
    feeds["v"] = rng.standard_normal([B, H, T, E]).astype(np.float32)
    if mask_dims is not None:
        bits = rng.integers(0, 2, mask_dims)
        feeds["mask"] = (bits if binary else -3.0 * bits).astype(np.float32)
    return feeds


def qkv_reference(feeds: dict[str, np.ndarray]) -> np.ndarray:
    args = {n: feeds[n].astype(np.float64) for n in ("q", "k", "v")}
    mask = feeds.get("mask")
    return evaluate_attention(OpArgs({**args, "mask": mask}, {"scale": 0.5}))


MASK_CASES = {
    "batch_11t": [B, 1, 1, T],  # broadcast to [B, H, ...] in the lowering (batch 2)
    "full": [B, H, S, T],
    "heads_st": [1, H, S, T],
    "plane": [S, T],
    "row": [T],
    "none": None,
}


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_mask_broadcasts_match_numpy(case: str, opt_level: int) -> None:
    dims = MASK_CASES[case]
    proto, feeds = qkv_graph(dims), qkv_feeds(dims)
    if opt_level == 2:
        assert ops_after_o2(proto).count("wpk.attention") == 1
    (got,) = woodpecker.compile(proto, opt_level=opt_level).run(None, feeds)
    np.testing.assert_allclose(got, qkv_reference(feeds), rtol=RTOL, atol=ATOL)


def test_second_user_of_scores_is_not_fused() -> None:
    proto = qkv_graph([B, 1, 1, T], extra_outputs=["masked"])
    ops = ops_after_o2(proto)
    assert "wpk.attention" not in ops and "wpk.softmax" in ops
    feeds = qkv_feeds([B, 1, 1, T])
    got, masked = woodpecker.compile(proto, opt_level=2).run(None, feeds)
    np.testing.assert_allclose(got, qkv_reference(feeds), rtol=RTOL, atol=ATOL)
    assert masked.shape == (B, H, S, T)


def test_second_user_of_probabilities_is_not_fused() -> None:
    ops = ops_after_o2(qkv_graph(None, extra_outputs=["probs"]))
    assert "wpk.attention" not in ops and "wpk.softmax" in ops


def test_where_mask_is_left_unfused() -> None:
    dims = [1, 1, S, T]
    proto, feeds = qkv_graph(dims, where_mask=True), qkv_feeds(dims, binary=True)
    ops = ops_after_o2(proto)
    assert "wpk.attention" not in ops and "wpk.softmax" in ops
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, feeds)
    (got,) = woodpecker.compile(proto, opt_level=2).run(None, feeds)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"q": [2, 5, 4], "k": [2, 6, 4], "v": [2, 6, 3]}, "rank 4"),
        ({"q": [1, 2, 5, 4], "k": [1, 3, 6, 4], "v": [1, 3, 6, 3]}, r"share \[B, H\]"),
        ({"q": [1, 2, 5, 4], "k": [1, 2, 6, 8], "v": [1, 2, 6, 3]}, "head dim"),
        ({"q": [1, 2, 5, 4], "k": [1, 2, 6, 4], "v": [1, 2, 7, 3]}, "as many keys"),
        ({"q": [1, 2, 5, 4], "k": [1, 2, 6, 4], "v": [1, 2, 6, 3], "mask": [1, 1, 1, 5]}, "does not broadcast"),
    ],
)
def test_attention_shape_rule_rejects(shapes: dict[str, list[int]], message: str) -> None:
    with pytest.raises(ShapeRuleError, match=message):
        attention_shape(OpArgs(shapes, {"scale": 1.0}))


def test_attention_shape_rule() -> None:
    shapes = {"q": [1, 2, 5, 4], "k": [1, 2, 6, 4], "v": [1, 2, 6, 3], "mask": [1, 1, 1, 6]}
    assert attention_shape(OpArgs(shapes, {"scale": 1.0})) == [1, 2, 5, 3]


def torch_mha_graph() -> onnx.ModelProto:
    """torch's exported multi-head attention (ViT): q and K^T each scaled by d^-1/4, K^T a 3-D
    [H, D, T] transpose viewed as [1, H, D, T]."""
    nodes = [
        helper.make_node("Mul", ["q", "quarter"], ["qs"]),
        helper.make_node("Transpose", ["k"], ["kt3"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["kt3", "kt_shape"], ["kt"]),
        helper.make_node("Mul", ["kt", "quarter"], ["ks"]),
        helper.make_node("MatMul", ["qs", "ks"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([D**-0.25], dtype=np.float32), "quarter"),
        ints("kt_shape", [1, H, D, T]),
    ]
    return model(nodes, {"q": [1, H, S, D], "k": [H, T, D], "v": [1, H, T, E]}, {"y": [1, H, S, E]}, inits)


@pytest.mark.parametrize("opt_level", [0, 2])
def test_torch_mha_form_matches_numpy(opt_level: int) -> None:
    proto = torch_mha_graph()
    rng = np.random.default_rng(4)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in (("q", [1, H, S, D]), ("k", [H, T, D]))}
    feeds["v"] = rng.standard_normal([1, H, T, E]).astype(np.float32)
    if opt_level == 2:
        ops = ops_after_o2(proto)
        assert ops.count("wpk.attention") == 1 and "wpk.softmax" not in ops and "wpk.transpose" not in ops
    (got,) = woodpecker.compile(proto, opt_level=opt_level).run(None, feeds)
    args = {"q": feeds["q"], "k": feeds["k"][None], "v": feeds["v"]}
    expected = evaluate_attention(OpArgs({n: a.astype(np.float64) for n, a in args.items()}, {"scale": D**-0.5}))
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_the_attention_kernel_is_not_given_to_a_library_matmul() -> None:
    """A library call computes a matmul and its epilogue only: the fused attention's first product
    is read by its softmax in the same kernel, so oneDNN/BLAS must refuse it (they took it, and the
    rest of the kernel ran unscheduled: BERT-base 913 ms instead of 55 ms in code)."""
    from woodpecker import CompileOptions

    proto, feeds = bert_block("div", "b11s")
    feeds_in = run_feeds(proto, feeds)
    options = CompileOptions(opt_level=2, libraries="all", select="heuristic", use_tuning_records=False)
    compiled = woodpecker.compile(proto, options=options)
    attention = [c for c in compiled.selection if any("k" in n for n in c.kernel_names) and c.kind == "matmul"
                 and len(c.arg_shapes) >= 3 and list(c.arg_shapes[0]) == [1, HEADS, SEQ, HEAD_DIM]]
    assert attention, [(c.kernel_names, c.arg_shapes) for c in compiled.selection]
    for choice in attention:
        assert choice.choice == "generated", (choice.kernel_names, choice.choice)
        refused = [r for r in choice.candidates if r.impl == "onednn"]
        assert refused and "goes on after the matmul" in (refused[0].reason or "")
    (got,) = compiled.run(None, feeds_in)
    np.testing.assert_allclose(got, block_reference(proto, feeds), rtol=RTOL, atol=ATOL)
