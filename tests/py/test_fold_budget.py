"""Constant folding is bounded: a fold whose result would exceed the budget (graph/fold_budget.py)
is decided from the result's shape before evaluating and left to run time.

The models are a few hundred bytes and describe tens of GiB of constants: a pad of a 1x1
weight (folded by wpk-fold-constants) and a chain of outer sums of two 16-element constants
(folded by the importer). Each compile runs in a subprocess with its address space capped at
8 GiB (so that a regression fails fast with MemoryError instead of eating the machine) and
reports its peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from woodpecker.errors import ShapeError
from woodpecker.graph.context import GraphContext
from woodpecker.graph.fold_budget import FoldBudget, FoldOptions
from woodpecker.importer import import_onnx_with_weights
from woodpecker.passes import build_pass_manager

MAX_RSS_MIB = 1024


def _model(nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto]) -> onnx.ModelProto:
    nodes = [
        *nodes,
        helper.make_node("ReduceMean", [nodes[-1].output[0]], ["m"], name="mean", axes=[0, 1], keepdims=1),
        helper.make_node("Add", ["x", "m"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def pad_model(pad: int = 50000) -> onnx.ModelProto:
    """A 1x1 weight padded to 100001x100001 (37 GiB of f32, 75 GiB in float64)."""
    initializers = [
        numpy_helper.from_array(np.ones((1, 1), np.float32), "w"),
        numpy_helper.from_array(np.array([pad] * 4, np.int64), "pads"),
    ]
    return _model([helper.make_node("Pad", ["w", "pads"], ["p"], name="big_pad")], initializers)


def outer_sum_model() -> onnx.ModelProto:
    """16 + 16 constants -> 16x16 -> 256x256 -> 65536x65536 (16 GiB of f32) by outer sums."""
    initializers = [
        numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(16, 1), "a"),
        numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(1, 16), "b"),
    ]
    nodes = [helper.make_node("Add", ["a", "b"], ["c0"], name="outer0")]
    previous, size = "c0", 256
    for i in (1, 2):
        initializers += [
            numpy_helper.from_array(np.array([size, 1], np.int64), f"column_shape{i}"),
            numpy_helper.from_array(np.array([1, size], np.int64), f"row_shape{i}"),
        ]
        nodes += [
            helper.make_node("Reshape", [previous, f"column_shape{i}"], [f"column{i}"], name=f"column{i}"),
            helper.make_node("Reshape", [previous, f"row_shape{i}"], [f"row{i}"], name=f"row{i}"),
            helper.make_node("Add", [f"column{i}", f"row{i}"], [f"c{i}"], name=f"outer{i}"),
        ]
        previous, size = f"c{i}", size * size
    return _model(nodes, initializers)


_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    import woodpecker
    from woodpecker.frontend import lower_model

    path = sys.argv[1]
    ops = {}

    def on_stage(name, module):
        body = module.body.operations[0].regions[0].blocks[0].operations
        ops[name] = sorted({op.operation.name for op in body})

    lower_model(path, opt_level=2, on_stage=on_stage)
    # The unfolded op's buffer is the model's peak activation memory, which compile() refuses
    # on this machine (one line naming the node), and compiles when the limit is raised
    # (running it would compute the huge tensor).
    try:
        woodpecker.compile(path)
        refused = None
    except woodpecker.errors.MemoryLimitError as err:
        refused = str(err)
    woodpecker.compile(path, options=woodpecker.CompileOptions(memory_limit=1 << 50))
    print(json.dumps({
        "refused": refused,
        "optimized_ops": ops["optimize"],
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }))
    """
)


def _compile_in_subprocess(model: onnx.ModelProto, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    assert path.stat().st_size < 1024  # a tiny file
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("model", "left_op"),
    [(pad_model(), "wpk.pad"), (outer_sum_model(), "wpk.add")],
    ids=["pad-37GiB", "outer-sum-16GiB"],
)
def test_huge_fold_is_left_to_run_time(model: onnx.ModelProto, left_op: str, tmp_path: Path) -> None:
    report = _compile_in_subprocess(model, tmp_path)
    assert left_op in report["optimized_ops"]  # the op computing the huge tensor stays
    assert report["max_rss_mib"] < MAX_RSS_MIB, report
    # Left to run time, the tensor is the model's peak activation memory: refused by default.
    assert report["refused"] and "activation memory" in report["refused"], report


def test_small_folds_still_fold() -> None:
    imported = import_onnx_with_weights(pad_model(pad=2))
    ops = [op.operation.name for op in imported.module.body.operations[0].regions[0].blocks[0].operations]
    assert "wpk.pad" in ops
    graph = GraphContext(imported.weights)
    with imported.context:
        build_pass_manager("wpk-fold-constants", graph=graph).run(imported.module.operation)
    ops = [op.operation.name for op in imported.module.body.operations[0].regions[0].blocks[0].operations]
    assert "wpk.pad" not in ops and "wpk.reduce_mean" not in ops  # 5x5 pad and its mean folded
    assert graph.fold_budget.used_bytes == 4 * 25 + 4


def test_integer_fold_over_budget_is_an_error_naming_the_node() -> None:
    """Integer data cannot become a run-time tensor: one line naming the node."""
    model = outer_sum_model()
    for init in model.graph.initializer:
        if init.name in ("a", "b"):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.int64), init.name))
    # The int64 outer sum is the model's output (ONNX's type rules allow that; conversion
    # reaches the fold before the float-output check).
    del model.graph.node[-2:]
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("c2", TensorProto.INT64, None))
    model.graph.output[0].type.tensor_type.shape.SetInParent()
    with pytest.raises(
        ShapeError,
        match=r"node 'outer2' \(op Add\): folding its constant int64 inputs would make a "
        r"\[65536, 65536\] array of 34359738368 bytes, over the fold budget",
    ):
        import_onnx_with_weights(model)


def test_budget_counts_tensors_and_total() -> None:
    budget = FoldBudget(FoldOptions(max_tensor_bytes=400, max_total_bytes=1000))
    assert budget.admits([10, 10])  # 400 bytes: at the per-tensor limit
    assert not budget.admits([101])  # 404 bytes > 400
    assert budget.admits([100]) and budget.used_bytes == 800
    assert not budget.admits([60])  # 240 more would pass the total of 1000
    assert budget.admits([50])


def test_graph_context_default_budget() -> None:
    from woodpecker.dialect.weights import WeightTable

    options = GraphContext(WeightTable()).fold_budget.options
    assert options == FoldOptions() and options.max_tensor_bytes == 64 << 20
