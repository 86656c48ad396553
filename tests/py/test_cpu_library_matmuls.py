"""oneDNN and BLAS calls for the matmuls of attention (woodpecker.libs): products of two run-time
operands, batched or not, the right one transposed (read through strides) or not, batch dims
broadcast or equal, with the 2-D matmul's epilogues as post-ops; and a constant right operand
read transposed (N x K), packed once at compile time.

Numerics compare with numpy float64 at rtol 1e-5 and atol 1e-5 x the reference's largest
magnitude (float32 products summed in another order than numpy's).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from mlir import ir
from onnx import TensorProto, helper, numpy_helper

import woodpecker
from woodpecker.backend.cpu import CpuOptions, compile_cpu
from woodpecker.compiler import CompileOptions
from woodpecker.dialect import create_context
from woodpecker.frontend import lower_model
from woodpecker.kernels.decision import Library
from woodpecker.libs.emit import build_call, call_spec
from woodpecker.libs.match import NotApplicable, match_kernel
from woodpecker.runtime.cpu import blas, onednn
from woodpecker.schedule.kernels import find_kernels
from woodpecker.schedule.target import CpuMachine
from woodpecker.schedule.tasks import cpu_tasks
from woodpecker.targets.cpu import applicability

pytestmark = [
    pytest.mark.skipif(onednn.availability() is not None, reason=f"oneDNN unavailable: {onednn.availability()}"),
    pytest.mark.skipif(blas.availability() is not None, reason=f"BLAS unavailable: {blas.availability()}"),
]

RTOL, ATOL = 1e-5, 1e-5


def _vi(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def matmul_model(lhs, rhs, *, transpose_rhs: bool = False, epilogue: str = "none", seed: int = 0):
    """MatMul(a, b) of two graph inputs (b through a Transpose of its last two dims when
    `transpose_rhs`: a wpk.matmul_transposed after wpk-fold-transpose), then the epilogue;
    returns the model, its feeds and the float64 reference."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(lhs).astype(np.float32)
    b = rng.standard_normal(rhs).astype(np.float32)
    nodes, name, logical = [], "b", b
    if transpose_rhs:
        perm = list(range(len(rhs)))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        nodes.append(helper.make_node("Transpose", ["b"], ["bt"], perm=perm))
        name, logical = "bt", np.swapaxes(b, -1, -2)
    nodes.append(helper.make_node("MatMul", ["a", name], ["y"]))
    expected = np.matmul(a.astype(np.float64), logical.astype(np.float64))
    inits = []
    if epilogue == "bias_relu":
        bias = (rng.standard_normal(expected.shape[-1]) * 0.5).astype(np.float32)
        inits.append(numpy_helper.from_array(bias, "bias"))
        nodes[-1].output[0] = "mm"
        nodes += [helper.make_node("Add", ["mm", "bias"], ["biased"]), helper.make_node("Relu", ["biased"], ["y"])]
        expected = np.maximum(expected + bias, 0.0)
    elif epilogue != "none":
        raise ValueError(epilogue)
    graph = helper.make_graph(nodes, "g", [_vi("a", lhs), _vi("b", rhs)], [_vi("y", expected.shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model, {"a": a, "b": b}, expected


def _close(got: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL * float(np.max(np.abs(expected))))


CASES = {
    "bert-qk": ((1, 12, 128, 64), (1, 12, 64, 128), False),
    "bert-qk-transposed": ((1, 12, 128, 64), (1, 12, 128, 64), True),
    "bert-pv": ((1, 12, 128, 128), (1, 12, 128, 64), False),
    "broadcast-shared-rhs": ((12, 128, 64), (64, 128), False),
    "broadcast-batch": ((2, 1, 3, 5), (1, 4, 5, 7), False),
    "odd-3x5x7": ((3, 5, 7), (3, 7, 5), False),
    "odd-3x5x7-transposed": ((3, 5, 7), (3, 5, 7), True),
    "2d-runtime": ((5, 7), (7, 3), False),
}


@pytest.mark.parametrize("library", ["onednn", "blas"])
@pytest.mark.parametrize("case", list(CASES))
def test_runtime_matmul_library_call_matches_numpy(library: str, case: str) -> None:
    lhs, rhs, transposed = CASES[case]
    model, feeds, expected = matmul_model(lhs, rhs, transpose_rhs=transposed)
    options = CompileOptions(libraries=library, select="heuristic", use_tuning_records=False)
    compiled = woodpecker.compile(model, options=options)
    (got,) = compiled.run(None, feeds)
    _close(got, expected)
    assert compiled.stats.library_kernels == 1
    (call,) = compiled.executable.libraries
    assert call.library == library and call.spec.op == "runtime_matmul"
    (choice,) = [c for c in compiled.selection if c.kind == "matmul"]
    assert choice.choice == library
    assert {r.impl: r.reason for r in choice.candidates}[library] is None


@pytest.mark.parametrize("library", ["onednn", "blas"])
@pytest.mark.parametrize("shapes", [((3, 5, 7), (3, 7, 4)), ((5, 7), (7, 4))], ids=["batched", "2d"])
def test_runtime_matmul_with_bias_and_relu(library: str, shapes) -> None:
    model, feeds, expected = matmul_model(*shapes, epilogue="bias_relu")
    compiled = woodpecker.compile(
        model, options=CompileOptions(libraries=library, select="heuristic", use_tuning_records=False)
    )
    (got,) = compiled.run(None, feeds)
    _close(got, expected)
    (call,) = compiled.executable.libraries
    if library == "onednn":  # bias and relu are the call's post-ops: nothing is left to generate
        assert call.spec.weights.keys() == {"bias"}
        assert [p["alg"] for p in call.spec.params["post_ops"]] == ["relu"]
        assert compiled.stats.num_kernels == 1


def _task(model: onnx.ModelProto):
    lowered = lower_model(model)
    with lowered.imported.context:
        extracted = cpu_tasks(lowered.module, len(lowered.weights), CpuMachine.host(threads=2), device="test-cpu")
    (task,) = [e.task for e in extracted if e.task.kind == "matmul"]
    return task


@pytest.mark.parametrize("case", ["bert-qk", "bert-qk-transposed", "broadcast-shared-rhs"])
def test_the_batched_matmul_task_has_library_candidates(case: str) -> None:
    lhs, rhs, transposed = CASES[case]
    task = _task(matmul_model(lhs, rhs, transpose_rhs=transposed)[0])
    assert applicability(task, ["onednn", "blas"]) == {"onednn": None, "blas": None}


def test_select_measure_times_the_batched_library_candidates(tmp_path) -> None:
    model, feeds, expected = matmul_model((1, 12, 128, 64), (1, 12, 128, 64), transpose_rhs=True)
    options = CompileOptions(select="measure", tuning_db=str(tmp_path / "records.db"))
    compiled = woodpecker.compile(model, options=options)
    (choice,) = [c for c in compiled.selection if c.kind == "matmul"]
    assert choice.how == "measured"
    times = {r.impl: r.seconds for r in choice.candidates}
    assert all(times[impl] is not None and times[impl] > 0 for impl in ("generated", "onednn", "blas")), times
    assert choice.choice == min(times, key=lambda impl: times[impl])
    (got,) = compiled.run(None, feeds)
    _close(got, expected)


# -- a constant right operand read transposed (N x K) -----------------------------------------

TRANSPOSED_WEIGHT = """
#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#b = affine_map<(d0, d1, d2) -> (d1, d2)>
#c = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @main(%x: tensor<5x32xf32>, %w: tensor<48x32xf32>) -> tensor<5x48xf32> {
  %zero = arith.constant 0.0 : f32
  %0 = tensor.empty() : tensor<5x48xf32>
  %1 = linalg.fill ins(%zero : f32) outs(%0 : tensor<5x48xf32>) -> tensor<5x48xf32>
  %2 = linalg.matmul indexing_maps = [#a, #b, #c] ins(%x, %w : tensor<5x32xf32>, tensor<48x32xf32>)
         outs(%1 : tensor<5x48xf32>) -> tensor<5x48xf32>
  return %2 : tensor<5x48xf32>
}
"""


@pytest.mark.parametrize("library", ["onednn", "blas"])
def test_a_transposed_constant_weight_is_packed_once_and_matches_numpy(library: str) -> None:
    """wpk.matmul_transposed of a weight [N, K] (what wpk-fold-transpose leaves of a MatMul by a
    weight's transpose that constant folding left alone) is a linalg.matmul reading B as (n, k):
    the library call reads the weight as N x K (oneDNN reorders it into its packed layout once)."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((5, 32)).astype(np.float32), rng.standard_normal((48, 32)).astype(np.float32)
    expected = x.astype(np.float64) @ w.T.astype(np.float64)
    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(TRANSPOSED_WEIGHT)
        (kernel,) = find_kernels(module)
        plan = match_kernel(kernel, library, first_weight=1)
        assert plan.op == "matmul" and plan.params["transposed_weights"] and plan.weight_args == {"weights": 1}
        call = build_call(call_spec(plan, 1), [w], threads=1)
        if library == "onednn":
            out = np.empty((5, 48), np.float32)
            call(x, out)
            _close(out, expected)
        executable = compile_cpu(module, CpuOptions(), 1, [w], {kernel.name: Library(library)})
        executable.bind_weights([w])
        (got,) = executable([x])
    _close(got, expected)
    assert len(executable.libraries) == 1


def test_a_matmul_reading_its_left_operand_transposed_is_not_applicable() -> None:
    text = TRANSPOSED_WEIGHT.replace("(d0, d1, d2) -> (d0, d2)", "(d0, d1, d2) -> (d2, d0)").replace(
        "%x: tensor<5x32xf32>", "%x: tensor<32x5xf32>"
    ).replace("ins(%x, %w : tensor<5x32xf32>", "ins(%x, %w : tensor<32x5xf32>")
    with create_context() as context, ir.Location.unknown(context):
        module = ir.Module.parse(text)
        (kernel,) = find_kernels(module)
        with pytest.raises(NotApplicable, match="left operand"):
            match_kernel(kernel, "onednn", first_weight=1)


@pytest.mark.parametrize("library", ["onednn", "blas"])
def test_a_saved_model_builds_its_runtime_matmul_calls_again(library: str, tmp_path) -> None:
    model, feeds, expected = matmul_model((3, 5, 7), (3, 7, 4), epilogue="bias_relu")
    compiled = woodpecker.compile(
        model, options=CompileOptions(libraries=library, select="heuristic", use_tuning_records=False)
    )
    loaded = woodpecker.load(compiled.save(tmp_path / "model"))
    (got,) = loaded.run(None, feeds)
    _close(got, expected)
    np.testing.assert_array_equal(got, compiled.run(None, feeds)[0])
